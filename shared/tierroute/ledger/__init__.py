"""The spend ledger: one durable row per routed request, written off the request path.

Use it as a request hook (``TierRouter`` builds it from the ``ledger`` config section)::

    ledger = Ledger("sqlite:///tierroute.db")
    async with TierRouter(config, hooks=[ledger]) as router:  # leaving flushes the ledger
        await router.acomplete("hello")

Each row holds the request id, end time, key and user (from request metadata), decided tier and layer, the tier
and model that served, every attempt with its failure kind (JSON), tokens, cost, counterfactual cost (the
premium tier's price for the same tokens), latency, outcome, ``task_type`` / ``expected_tier`` metadata, and a
SHA-256 of the prompt (the text only with ``store_prompt_text``). See :mod:`tierroute.ledger.store`.

Writing and durability. The request only queues the row; a background thread commits rows in batches, at
the latest ``flush_interval_ms`` after a row was queued or as soon as ``batch_size`` rows wait. Leaving the
router (``async with`` / ``aclose()``), :meth:`Ledger.flush` and interpreter exit commit everything queued.
If the process is killed (``kill -9``), only rows of requests that ended within the last
:attr:`Ledger.loss_window_s` can be missing: ``flush_interval_ms`` plus :data:`COMMIT_ALLOWANCE_S` for the
commit itself, as long as the writer keeps up with the request rate (``benchmarks/ledger.py`` measures how
many rows per second it sustains). SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed batch
survives the process being killed; an OS crash or power loss can also drop the last commits.

If the database is down or slower than the request rate, rows wait in memory (``max_queue`` of them) while the
writer retries with backoff; past that, a new row waits up to 1 s for room (``on_full: block``) or not at all
(``drop``) and is then dropped, logged and counted in :attr:`Ledger.stats`. A request is never failed by the
ledger.

Retention: with ``retention_days`` rows older than that are deleted when the writer starts and hourly after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from tierroute.ledger.row import build_row, prompt_sha256
from tierroute.ledger.store import COLUMNS, create_engine, ensure_table, ledger_table, normalize_url, redact
from tierroute.ledger.writer import LedgerWriter, WriterStats

if TYPE_CHECKING:
    import sqlalchemy as sa

    from tierroute.config import LedgerConfig
    from tierroute.hooks import RequestEvent

__all__ = [
    "COLUMNS",
    "COMMIT_ALLOWANCE_S",
    "Ledger",
    "WriterStats",
    "build_row",
    "create_engine",
    "ensure_table",
    "ledger_table",
    "normalize_url",
    "prompt_sha256",
]

log = logging.getLogger("tierroute")

COMMIT_ALLOWANCE_S = 1.0
"""Time allowed for one batch commit in the loss window (local SQLite and PostgreSQL take milliseconds)."""


class _SqlSink:
    """Writes batches to the ledger table; lives in the writer thread."""

    def __init__(self, url: str, table: str, schema: str | None, retention_days: float | None) -> None:
        self.engine = create_engine(url)
        self.table = ledger_table(table, schema)
        self.retention_days = retention_days
        ensure_table(self.engine, self.table)

    def commit(self, rows: list[dict[str, Any]]) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.insert(), rows)

    def maintain(self) -> None:
        if self.retention_days is None:
            return
        cutoff = int((time.time() - self.retention_days * 86400.0) * 1000)
        with self.engine.begin() as conn:
            deleted = conn.execute(self.table.delete().where(self.table.c.ts_ms < cutoff)).rowcount
        if deleted:
            log.info("tierroute ledger: retention deleted %d row(s) older than %g days", deleted, self.retention_days)

    def close(self) -> None:
        self.engine.dispose()


class Ledger:
    """A request hook that records one row per finished request.

    Args:
        url: ``sqlite:///path.db`` or ``postgresql://user@host:5432/db``.
        store_prompt_text: Keep the message texts in ``prompt_text`` (default: only their SHA-256).
        table: Table name.
        db_schema: PostgreSQL schema (created if missing).
        flush_interval_s: Longest a row waits before its batch is committed.
        batch_size: Most rows per commit.
        max_queue: Rows queued before ``on_full`` applies.
        on_full: With a full queue, ``block`` the request up to 1 s for room, or ``drop`` at once; a row that
            finds no room is dropped and counted in :attr:`stats`.
        retention_days: Delete rows older than this (at start, then hourly); None keeps everything.
        key_field: Request metadata key of the API key / team a request is billed to.
        user_field: Request metadata key of the end user.

    Raises:
        ConfigError: The URL is not a SQLite or PostgreSQL URL.
    """

    def __init__(
        self,
        url: str,
        *,
        store_prompt_text: bool = False,
        table: str = "tierroute_requests",
        db_schema: str | None = None,
        flush_interval_s: float = 0.2,
        batch_size: int = 500,
        max_queue: int = 100_000,
        on_full: Any = "block",
        retention_days: float | None = None,
        key_field: str = "key",
        user_field: str = "user",
    ) -> None:
        self.url = normalize_url(url)
        self.store_prompt_text = store_prompt_text
        self.table_name = table
        self.db_schema = db_schema
        self.key_field = key_field
        self.user_field = user_field
        self.retention_days = retention_days
        self.writer = LedgerWriter(
            lambda: _SqlSink(self.url, table, db_schema, retention_days),
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            max_queue=max_queue,
            on_full=on_full,
        )

    @classmethod
    def from_config(cls, cfg: LedgerConfig) -> Ledger:
        """The ledger a ``ledger`` config section describes (``url`` must be set)."""
        if not cfg.url:
            from tierroute.errors import ConfigError

            raise ConfigError("ledger.url is not set", path="ledger.url", hint="e.g. url: sqlite:///tierroute.db")
        return cls(
            cfg.url,
            store_prompt_text=cfg.store_prompt_text,
            table=cfg.table,
            db_schema=cfg.db_schema,
            flush_interval_s=cfg.flush_interval_ms / 1000.0,
            batch_size=cfg.batch_size,
            max_queue=cfg.max_queue,
            on_full=cfg.on_full,
            retention_days=cfg.retention_days,
            key_field=cfg.key_field,
            user_field=cfg.user_field,
        )

    def __repr__(self) -> str:
        return f"Ledger(url={redact(self.url)!r}, table={self.table_name!r})"

    @property
    def loss_window_s(self) -> float:
        """Rows of requests that ended longer ago than this are committed (see the module docstring)."""
        return self.writer.flush_interval_s + COMMIT_ALLOWANCE_S

    @property
    def stats(self) -> WriterStats:
        """Rows written, batches, failed commits, dropped rows."""
        return self.writer.stats

    # ---- hook ---------------------------------------------------------------------------------------

    def record(self, event: RequestEvent) -> dict[str, Any]:
        """Queue the row of a finished request and return it."""
        row = build_row(
            event, store_prompt_text=self.store_prompt_text, key_field=self.key_field, user_field=self.user_field
        )
        self.writer.put(row)
        return row

    async def after(self, event: RequestEvent) -> None:
        """Request hook: queue the request's row (no I/O here)."""
        self.record(event)

    # ---- lifecycle ----------------------------------------------------------------------------------

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Block until every queued row is committed; False on timeout or persistent write errors."""
        return self.writer.flush(timeout)

    async def aflush(self, timeout: float | None = 30.0) -> bool:
        """Async :meth:`flush` (waits in a worker thread)."""
        return await asyncio.to_thread(self.writer.flush, timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush and stop the writer thread (recording again restarts it)."""
        return self.writer.close(timeout)

    async def aclose(self, timeout: float | None = 30.0) -> bool:
        """Async :meth:`close`."""
        ok = await asyncio.to_thread(self.writer.close, timeout)
        if not ok:
            log.error("tierroute ledger: not every row could be written (%s)", self.writer.last_error)
        return ok

    # ---- reading ------------------------------------------------------------------------------------

    def engine(self) -> sa.Engine:
        """A new engine on the ledger's database (for reading; dispose it when done)."""
        return create_engine(self.url)

    def count(self) -> int:
        """Rows in the ledger table (0 when it does not exist yet)."""
        from tierroute.ledger.store import sqlalchemy

        sa_ = sqlalchemy()
        engine = self.engine()
        try:
            table = ledger_table(self.table_name, self.db_schema)
            with engine.connect() as conn:
                if not sa_.inspect(conn).has_table(table.name, schema=table.schema):
                    return 0
                return int(conn.execute(sa_.select(sa_.func.count()).select_from(table)).scalar_one())
        finally:
            engine.dispose()

    def prune(self, older_than_days: float) -> int:
        """Delete rows older than ``older_than_days`` now; returns how many were deleted."""
        from tierroute.ledger.store import sqlalchemy

        sqlalchemy()
        engine = self.engine()
        try:
            table = ledger_table(self.table_name, self.db_schema)
            ensure_table(engine, table)
            cutoff = int((time.time() - older_than_days * 86400.0) * 1000)
            with engine.begin() as conn:
                return int(conn.execute(table.delete().where(table.c.ts_ms < cutoff)).rowcount)
        finally:
            engine.dispose()
