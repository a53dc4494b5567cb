"""The ledger's table and database connections (SQLAlchemy Core): SQLite by default, PostgreSQL by URL.

One row per finished request. Money is in USD as double precision; times are integer milliseconds since the
epoch (UTC), so grouping by hour or day is integer division in both SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tierroute.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["COLUMNS", "create_engine", "ensure_table", "ledger_table", "normalize_url", "redact", "sqlalchemy"]

log = logging.getLogger("tierroute")

#: Every column of a ledger row, in table order.
COLUMNS = (
    "id",
    "ts_ms",
    "request_id",
    "key",
    "user",
    "decided_tier",
    "layer",
    "score",
    "tier",
    "served_model",
    "calls",
    "attempts",
    "fell_back",
    "escalations",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "counterfactual_cost_usd",
    "latency_ms",
    "outcome",
    "stream",
    "task_type",
    "expected_tier",
    "budget_action",
    "prompt_sha256",
    "prompt_text",
)


def sqlalchemy() -> Any:
    """Import SQLAlchemy, or say how to install it."""
    try:
        import sqlalchemy as sa
    except ImportError as exc:
        raise MissingDependencyError("sqlalchemy", "ledger", "the spend ledger") from exc
    return sa


def normalize_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` use the psycopg 3 driver; other URLs are kept as they are.

    Raises:
        ConfigError: The URL is neither SQLite nor PostgreSQL.
    """
    scheme, sep, rest = url.partition("://")
    low = scheme.lower()
    if not sep:
        raise ConfigError(f"ledger url {url!r} has no scheme", path="ledger.url", hint="e.g. sqlite:///tierroute.db")
    if low in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    if low in ("postgresql+psycopg", "sqlite"):
        return url
    raise ConfigError(
        f"ledger url scheme {scheme!r} is not supported",
        path="ledger.url",
        hint="use sqlite:///path/to/ledger.db or postgresql://user@host:5432/db",
    )


def redact(url: str) -> str:
    """The URL with its password hidden (for messages and reports)."""
    try:
        sa = sqlalchemy()
        return str(sa.engine.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "<ledger url>"


def ledger_table(name: str = "tierroute_requests", schema: str | None = None) -> sa.Table:
    """The ledger table (in its own ``MetaData``)."""
    sql = sqlalchemy()
    md = sql.MetaData(schema=schema)
    dbl = sql.Float(precision=53)
    table: sa.Table = sql.Table(
        name,
        md,
        sql.Column("id", sql.String(32), primary_key=True),
        sql.Column("ts_ms", sql.BigInteger, nullable=False, index=True),
        sql.Column("request_id", sql.String(200)),
        sql.Column("key", sql.String(200), index=True),
        sql.Column("user", sql.String(200)),
        sql.Column("decided_tier", sql.String(100)),
        sql.Column("layer", sql.String(40)),
        sql.Column("score", dbl),
        sql.Column("tier", sql.String(100), index=True),
        sql.Column("served_model", sql.String(200)),
        sql.Column("calls", sql.Integer, nullable=False),
        sql.Column("attempts", sql.Text, nullable=False),
        sql.Column("fell_back", sql.Boolean, nullable=False),
        sql.Column("escalations", sql.Integer, nullable=False),
        sql.Column("prompt_tokens", sql.BigInteger, nullable=False),
        sql.Column("completion_tokens", sql.BigInteger, nullable=False),
        sql.Column("cost_usd", dbl, nullable=False),
        sql.Column("counterfactual_cost_usd", dbl, nullable=False),
        sql.Column("latency_ms", dbl, nullable=False),
        sql.Column("outcome", sql.String(100), nullable=False),
        sql.Column("stream", sql.Boolean, nullable=False),
        sql.Column("task_type", sql.String(100)),
        sql.Column("expected_tier", sql.String(100)),
        sql.Column("budget_action", sql.String(300)),
        sql.Column("prompt_sha256", sql.String(64), nullable=False),
        sql.Column("prompt_text", sql.Text),
    )
    return table


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers never block the writer; synchronous=NORMAL: a commit survives the process being killed
    # (it is in the WAL file); only an OS crash or power loss can drop the last commits.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def create_engine(url: str) -> sa.Engine:
    """An engine for a ledger URL: SQLite files get WAL and a busy timeout; PostgreSQL uses psycopg 3.

    Raises:
        ConfigError: The URL is not a SQLite or PostgreSQL URL.
        MissingDependencyError: SQLAlchemy (or psycopg, for PostgreSQL) is not installed.
    """
    sql = sqlalchemy()
    url = normalize_url(url)
    u = sql.engine.make_url(url)
    if u.get_backend_name() == "sqlite":
        if not u.database or u.database == ":memory:":
            raise ConfigError(
                "an in-memory SQLite ledger cannot be shared with the writer thread",
                path="ledger.url",
                hint="give a file: sqlite:///tierroute.db",
            )
        Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine: sa.Engine = sql.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sql.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("psycopg", "postgres", "a PostgreSQL ledger") from exc
    pg: sa.Engine = sql.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=2)
    return pg


def ensure_table(engine: sa.Engine, table: sa.Table) -> None:
    """Create the schema (PostgreSQL) and the table with its indexes if they do not exist.

    Safe when several processes start at once: a lost creation race is detected and ignored.
    """
    sa = sqlalchemy()
    for attempt in range(3):
        try:
            with engine.begin() as conn:
                if table.schema and engine.dialect.name == "postgresql":
                    conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"'))
                table.create(conn, checkfirst=True)
            return
        except sa.exc.DBAPIError:
            if attempt == 2:
                raise
            with engine.connect() as conn:  # another process created it between our check and our CREATE
                if sa.inspect(conn).has_table(table.name, schema=table.schema):
                    return
