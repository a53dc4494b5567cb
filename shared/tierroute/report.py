"""The spend report: what was spent, by tier / model / day / key, against the all-premium counterfactual.

Every number is a SQL aggregate over the ledger table (no sampling, no re-computation in Python), so the
report matches the ledger exactly. :func:`build_report` returns a JSON-ready dict; :func:`print_report` renders
it as terminal tables (rich); :mod:`tierroute.report_html` renders it as a self-contained HTML page.

``tierroute report --ledger URL --json`` prints at least::

    {"requests": int, "cost_usd": float, "counterfactual_cost_usd": float, "savings_pct": float,
     "by_tier": {tier: {"requests": int, "cost_usd": float, ...}}, "fallback_rate": float}
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from tierroute.errors import ConfigError
from tierroute.ledger.store import create_engine, ledger_table, redact, sqlalchemy

if TYPE_CHECKING:
    import sqlalchemy as sa
    from rich.console import Console

__all__ = ["GROUP_BY", "build_report", "parse_time", "print_report"]

GroupBy = Literal["tier", "model", "day", "key"]
GROUP_BY: tuple[str, ...] = ("tier", "model", "day", "key")
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, *, now: float | None = None) -> int | None:
    """Milliseconds since the epoch for ``--since`` / ``--until``.

    Accepts an ISO date or datetime (``2025-01-31``, ``2025-01-31T09:30``; UTC unless it has an offset),
    a relative age (``30m``, ``24h``, ``7d``, ``2w``: that long before now), ``now``, or epoch seconds.

    Raises:
        ConfigError: The text is none of these.
    """
    if text is None or not text.strip():
        return None
    t = text.strip().lower()
    now = time.time() if now is None else now
    if t == "now":
        return int(now * 1000)
    m = _RELATIVE.match(t)
    if m:
        return int((now - float(m.group(1)) * _UNIT_S[m.group(2)]) * 1000)
    try:
        return int(float(t) * 1000)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"cannot read time {text!r}",
            path="--since/--until",
            hint="use 2025-01-31, 2025-01-31T09:30, 24h, 7d or epoch seconds",
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")


def _f(x: Any) -> float:
    return float(x) if x is not None else 0.0


def _i(x: Any) -> int:
    return int(x) if x is not None else 0


def _savings(cost: float, cf: float) -> float:
    return (cf - cost) / cf * 100.0 if cf > 0 else 0.0


class _Q:
    """Aggregate queries over one ledger table and time range."""

    def __init__(self, conn: sa.Connection, table: sa.Table, since: int | None, until: int | None) -> None:
        self.sa = sqlalchemy()
        self.conn = conn
        self.t = table
        self.where: list[Any] = []
        if since is not None:
            self.where.append(table.c.ts_ms >= since)
        if until is not None:
            self.where.append(table.c.ts_ms < until)

    def measures(self) -> list[Any]:
        sa, t = self.sa, self.t
        return [
            sa.func.count().label("requests"),
            sa.func.sum(t.c.cost_usd).label("cost_usd"),
            sa.func.sum(t.c.counterfactual_cost_usd).label("counterfactual_cost_usd"),
            sa.func.sum(sa.case((t.c.fell_back, 1), else_=0)).label("fallbacks"),
            sa.func.sum(sa.case((t.c.escalations > 0, 1), else_=0)).label("escalated"),
            sa.func.sum(sa.case((t.c.outcome != "ok", 1), else_=0)).label("errors"),
            sa.func.sum(t.c.prompt_tokens).label("prompt_tokens"),
            sa.func.sum(t.c.completion_tokens).label("completion_tokens"),
            sa.func.sum(t.c.calls).label("calls"),
            sa.func.avg(t.c.latency_ms).label("latency_avg_ms"),
            sa.func.max(t.c.latency_ms).label("latency_max_ms"),
        ]

    def rows(self, *group: Any) -> list[Any]:
        stmt = self.sa.select(*group, *self.measures()).select_from(self.t).where(*self.where)
        if group:
            stmt = stmt.group_by(*group).order_by(*group)
        return list(self.conn.execute(stmt))

    def span(self) -> tuple[int | None, int | None]:
        sa, t = self.sa, self.t
        lo, hi = self.conn.execute(sa.select(sa.func.min(t.c.ts_ms), sa.func.max(t.c.ts_ms)).where(*self.where)).one()
        return (int(lo) if lo is not None else None, int(hi) if hi is not None else None)

    def percentile(self, q: float, n: int, *cond: Any) -> float | None:
        """Nearest-rank percentile of latency among ``n`` rows matching ``cond`` (exact, any dialect)."""
        if n <= 0:
            return None
        sa, t = self.sa, self.t
        offset = max(0, min(n - 1, int(q * n + 0.999999) - 1))
        stmt = sa.select(t.c.latency_ms).where(*self.where, *cond).order_by(t.c.latency_ms).limit(1).offset(offset)
        v = self.conn.execute(stmt).scalar()
        return float(v) if v is not None else None

    def confusion(self) -> list[Any]:
        sa, t = self.sa, self.t
        stmt = (
            sa.select(t.c.expected_tier, t.c.decided_tier, sa.func.count().label("n"))
            .where(*self.where, t.c.expected_tier.is_not(None))
            .group_by(t.c.expected_tier, t.c.decided_tier)
        )
        return list(self.conn.execute(stmt))


def _summary(r: Any) -> dict[str, Any]:
    n = _i(r.requests)
    cost, cf = _f(r.cost_usd), _f(r.counterfactual_cost_usd)
    return {
        "requests": n,
        "cost_usd": cost,
        "counterfactual_cost_usd": cf,
        "savings_usd": cf - cost,
        "savings_pct": _savings(cost, cf),
        "fallbacks": _i(r.fallbacks),
        "escalated": _i(r.escalated),
        "errors": _i(r.errors),
        "calls": _i(r.calls),
        "prompt_tokens": _i(r.prompt_tokens),
        "completion_tokens": _i(r.completion_tokens),
        "fallback_rate": _i(r.fallbacks) / n if n else 0.0,
        "escalation_rate": _i(r.escalated) / n if n else 0.0,
        "error_rate": _i(r.errors) / n if n else 0.0,
        "latency_avg_ms": _f(r.latency_avg_ms),
        "latency_max_ms": _f(r.latency_max_ms),
    }


def _group_column(q: _Q, group_by: str) -> Any:
    t = q.t
    if group_by == "tier":
        return t.c.tier
    if group_by == "model":
        return t.c.served_model
    if group_by == "key":
        return t.c.key
    return (t.c.ts_ms // _DAY_MS).label("day")


def build_report(
    url: str,
    *,
    table: str = "tierroute_requests",
    db_schema: str | None = None,
    since: int | None = None,
    until: int | None = None,
    group_by: str = "tier",
    bucket: Literal["auto", "minute", "hour", "day"] = "auto",
    tiers: list[str] | None = None,
) -> dict[str, Any]:
    """Aggregate the ledger.

    Args:
        url: Ledger URL (``sqlite:///...`` or ``postgresql://...``).
        table: Ledger table.
        db_schema: PostgreSQL schema of the table.
        since: Only rows that ended at or after this (ms since the epoch).
        until: Only rows that ended before this.
        group_by: ``tier``, ``model``, ``day`` or ``key``: the ``groups`` table.
        bucket: Time-series bucket: ``minute``, ``hour``, ``day``, or ``auto`` (minutes up to 3 hours of data,
            hours up to 3 days, else days).
        tiers: Tier order (cheapest first) for tables and charts; default: the order of first appearance.

    Returns:
        The report (JSON-ready); see the module docstring for the guaranteed keys.

    Raises:
        ConfigError: Bad ``group_by`` or URL, or the ledger table does not exist.
    """
    if group_by not in GROUP_BY:
        raise ConfigError(f"cannot group by {group_by!r}", path="--group-by", hint=f"one of {', '.join(GROUP_BY)}")
    sa = sqlalchemy()
    engine = create_engine(url)
    t = ledger_table(table, db_schema)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(t.name, schema=t.schema):
                raise ConfigError(
                    f"ledger {redact(url)} has no table {table!r}",
                    path="--ledger",
                    hint="check the URL and --table; the table appears once a router with this ledger has served",
                )
            q = _Q(conn, t, since, until)
            return _assemble(q, url, since, until, group_by, bucket, tiers)
    finally:
        engine.dispose()


def _assemble(
    q: _Q, url: str, since: int | None, until: int | None, group_by: str, bucket: str, tiers: list[str] | None
) -> dict[str, Any]:
    t = q.t
    total = _summary(q.rows()[0])
    by_tier: dict[str, dict[str, Any]] = {}
    for r in q.rows(t.c.tier):
        s = _summary(r)
        n = s["requests"]
        s["latency_p50_ms"] = q.percentile(0.5, n, t.c.tier == r.tier if r.tier is not None else t.c.tier.is_(None))
        s["latency_p95_ms"] = q.percentile(0.95, n, t.c.tier == r.tier if r.tier is not None else t.c.tier.is_(None))
        by_tier[str(r.tier)] = s
    order = [x for x in (tiers or []) if x in by_tier] + [x for x in by_tier if x not in (tiers or [])]
    by_tier = {k: by_tier[k] for k in order}
    gcol = _group_column(q, group_by)
    groups = []
    for r in q.rows(gcol):
        label = r[0]
        if group_by == "day" and label is not None:
            label = datetime.fromtimestamp(int(label) * 86400, tz=timezone.utc).strftime("%Y-%m-%d")
        groups.append({group_by: label if label is None else str(label), **_summary(r)})
    lo, hi = q.span()
    if bucket == "auto":
        spread = (hi - lo) if lo is not None and hi is not None else 0
        bucket = "minute" if spread <= 3 * _HOUR_MS else "hour" if spread <= 3 * _DAY_MS else "day"
    width = {"minute": _MINUTE_MS, "hour": _HOUR_MS}.get(bucket, _DAY_MS)
    series: dict[int, dict[str, Any]] = {}
    for r in q.rows((t.c.ts_ms // width).label("b"), t.c.tier):
        b = series.setdefault(int(r.b), {"start_ms": int(r.b) * width, "by_tier": {}})
        b["by_tier"][str(r.tier)] = _summary(r)
    timeline = []
    for key in sorted(series):
        b = series[key]
        parts = b["by_tier"].values()
        n = sum(p["requests"] for p in parts)
        timeline.append(
            {
                "start": _iso(b["start_ms"]),
                "start_ms": b["start_ms"],
                "requests": n,
                "cost_usd": sum(p["cost_usd"] for p in parts),
                "counterfactual_cost_usd": sum(p["counterfactual_cost_usd"] for p in parts),
                "fallback_rate": sum(p["fallbacks"] for p in parts) / n if n else 0.0,
                "escalation_rate": sum(p["escalated"] for p in parts) / n if n else 0.0,
                "cost_by_tier": {k: v["cost_usd"] for k, v in b["by_tier"].items()},
            }
        )
    confusion: dict[str, dict[str, int]] = {}
    labelled = correct = 0
    for r in q.confusion():
        confusion.setdefault(str(r.expected_tier), {})[str(r.decided_tier)] = int(r.n)
        labelled += int(r.n)
        correct += int(r.n) if r.expected_tier == r.decided_tier else 0
    return {
        **total,
        "by_tier": by_tier,
        "group_by": group_by,
        "groups": groups,
        "bucket": bucket,
        "timeline": timeline,
        "routing_accuracy": {
            "labelled": labelled,
            "correct": correct,
            "accuracy": correct / labelled if labelled else None,
            "confusion": confusion,
        },
        "since": _iso(since),
        "until": _iso(until),
        "first": _iso(lo),
        "last": _iso(hi),
        "ledger": redact(url),
        "table": t.name,
    }


def _usd(x: float) -> str:
    return f"${x:,.6f}" if abs(x) < 1 else f"${x:,.2f}"


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Render a report as terminal tables (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    r = report
    console.print(
        f"[bold]tierroute spend report[/bold]  ledger {r['ledger']}  "
        f"{r['first'] or '-'} .. {r['last'] or '-'}  ({r['requests']} requests)"
    )
    head = Table(title="summary", show_header=False)
    head.add_column("what")
    head.add_column("value", justify="right")
    head.add_row("spend (actual)", _usd(r["cost_usd"]))
    head.add_row("spend if every request went to the premium tier", _usd(r["counterfactual_cost_usd"]))
    head.add_row("saving", f"{_usd(r['savings_usd'])} ({r['savings_pct']:.1f}%)")
    head.add_row("fallback rate", f"{r['fallback_rate']:.2%}")
    head.add_row("escalation rate", f"{r['escalation_rate']:.2%}")
    head.add_row("error rate", f"{r['error_rate']:.2%}")
    head.add_row("tokens (prompt / completion)", f"{r['prompt_tokens']:,} / {r['completion_tokens']:,}")
    acc = r["routing_accuracy"]
    if acc["labelled"]:
        head.add_row("routing accuracy vs expected_tier", f"{acc['accuracy']:.1%} of {acc['labelled']}")
    console.print(head)
    tiers = Table(title="by tier (the tier that served)")
    for col in ("tier", "requests", "spend", "counterfactual", "saving", "fallbacks", "p50 ms", "p95 ms"):
        tiers.add_column(col, justify="left" if col == "tier" else "right")
    for name, s in r["by_tier"].items():
        p50, p95 = s.get("latency_p50_ms"), s.get("latency_p95_ms")
        tiers.add_row(
            name,
            str(s["requests"]),
            _usd(s["cost_usd"]),
            _usd(s["counterfactual_cost_usd"]),
            f"{s['savings_pct']:.1f}%",
            str(s["fallbacks"]),
            "-" if p50 is None else f"{p50:.0f}",
            "-" if p95 is None else f"{p95:.0f}",
        )
    console.print(tiers)
    if r["group_by"] != "tier":
        g = Table(title=f"by {r['group_by']}")
        for col in (r["group_by"], "requests", "spend", "counterfactual", "saving", "fallback rate", "errors"):
            g.add_column(col, justify="left" if col == r["group_by"] else "right")
        for row in r["groups"]:
            g.add_row(
                str(row[r["group_by"]]),
                str(row["requests"]),
                _usd(row["cost_usd"]),
                _usd(row["counterfactual_cost_usd"]),
                f"{row['savings_pct']:.1f}%",
                f"{row['fallback_rate']:.2%}",
                str(row["errors"]),
            )
        console.print(g)
    if acc["labelled"]:
        names = sorted({*acc["confusion"], *(d for v in acc["confusion"].values() for d in v)})
        c = Table(title="routing: expected tier (rows) vs decided tier (columns)")
        c.add_column("expected \\ decided")
        for n in names:
            c.add_column(n, justify="right")
        for e in names:
            if e in acc["confusion"]:
                c.add_row(e, *(str(acc["confusion"][e].get(d, 0)) for d in names))
        console.print(c)
