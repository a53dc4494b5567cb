"""The spend report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no network.

Charts: spend by tier over time (stacked bars), actual vs counterfactual spend (cumulative lines), fallback
and escalation rates over time (lines), routing accuracy against ``expected_tier`` (a confusion heat map),
and latency by tier (p50 / p95 bars). Each chart is an ``<svg class="chart" id="chart-...">``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CHART_IDS", "render_html", "write_html"]

CHART_IDS = (
    "chart-spend-by-tier",
    "chart-actual-vs-counterfactual",
    "chart-rates",
    "chart-confusion",
    "chart-latency",
)
PALETTE = ("#2a9d8f", "#e9c46a", "#e76f51", "#264653", "#8ab17d", "#9b5de5", "#f4a261", "#577590")
W, H = 760, 300
ML, MR, MT, MB = 70, 20, 20, 60  # margins: left, right, top, bottom

_BUCKET_WORD = {"minute": "per-minute", "hour": "hourly", "day": "daily"}
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1d2b36;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.sub{color:#5b6b79;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{background:#fff;border:1px solid #dde3e8;border-radius:8px;padding:12px 16px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#5b6b79;font-size:12px}
svg.chart{background:#fff;border:1px solid #dde3e8;border-radius:8px}
svg text{font-size:11px;fill:#33434f}table{border-collapse:collapse;background:#fff;font-size:13px}
td,th{border:1px solid #dde3e8;padding:4px 10px;text-align:right}th:first-child,td:first-child{text-align:left}
.legend{font-size:12px;margin:4px 0}.legend i{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _usd(x: float) -> str:
    return f"${x:,.6f}" if abs(x) < 1 else f"${x:,.2f}"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    import math

    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return float(m * exp)
    return float(10 * exp)


def _frame(chart_id: str, title: str, ymax: float, yfmt: str, labels: Sequence[str]) -> list[str]:
    """SVG opening, y grid with ticks, x labels (thinned to fit)."""
    out = [
        f'<svg class="chart" id="{chart_id}" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
        f'viewBox="0 0 {W} {H}" role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>'
    ]
    ph = H - MT - MB
    for i in range(5):
        y = MT + ph - ph * i / 4
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e6ebef"/>')
        out.append(f'<text x="{ML - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(yfmt.format(ymax * i / 4))}</text>')
    n = max(1, len(labels))
    step = max(1, (n + 9) // 10)
    pw = W - ML - MR
    for i, lab in enumerate(labels):
        if i % step:
            continue
        x = ML + pw * (i + 0.5) / n
        out.append(
            f'<text x="{x:.1f}" y="{H - MB + 14}" text-anchor="end" transform="rotate(-30 {x:.1f} {H - MB + 14})">'
            f"{_e(lab)}</text>"
        )
    out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{MT + ph}" y2="{MT + ph}" stroke="#8c9aa5"/>')
    return out


def _legend(names: Sequence[str], colors: Sequence[str]) -> str:
    items = "".join(f'<i style="background:{c}"></i>{_e(n)}' for n, c in zip(names, colors))
    return f'<div class="legend">{items}</div>'


def _label(start: str | None, bucket: str) -> str:
    s = start or ""
    if bucket == "minute":
        return s[11:16]
    return s[5:13].replace("T", " ") + "h" if bucket == "hour" else s[:10]


def spend_by_tier(report: dict[str, Any], tiers: list[str]) -> str:
    """Stacked bars: spend per time bucket, one colour per tier."""
    tl = report["timeline"]
    labels = [_label(b["start"], report["bucket"]) for b in tl]
    ymax = _nice_max(max((b["cost_usd"] for b in tl), default=0.0))
    out = _frame(CHART_IDS[0], "Spend by tier over time", ymax, "${:.4g}", labels)
    n, pw, ph = max(1, len(tl)), W - ML - MR, H - MT - MB
    bw = max(2.0, pw / n * 0.7)
    for i, b in enumerate(tl):
        x = ML + pw * (i + 0.5) / n - bw / 2
        y = MT + ph
        for j, tier in enumerate(tiers):
            v = b["cost_by_tier"].get(tier, 0.0)
            h = ph * v / ymax
            if h <= 0:
                continue
            y -= h
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(tier)} {_e(labels[i])}: {_usd(v)}</title></rect>'
            )
    out.append("</svg>")
    return "".join(out) + _legend(tiers, PALETTE)


def _lines(chart_id: str, title: str, labels: Sequence[str], series: dict[str, list[float]], yfmt: str) -> str:
    ymax = _nice_max(max((v for vs in series.values() for v in vs), default=0.0))
    out = _frame(chart_id, title, ymax, yfmt, labels)
    n, pw, ph = max(1, len(labels)), W - ML - MR, H - MT - MB
    colors = ("#e76f51", "#2a9d8f", "#264653", "#e9c46a")
    for k, (name, vs) in enumerate(series.items()):
        pts = " ".join(f"{ML + pw * (i + 0.5) / n:.1f},{MT + ph - ph * v / ymax:.1f}" for i, v in enumerate(vs))
        c = colors[k % len(colors)]
        out.append(f'<polyline class="line" fill="none" stroke="{c}" stroke-width="2.5" points="{pts}"/>')
        for i, v in enumerate(vs):
            x, y = ML + pw * (i + 0.5) / n, MT + ph - ph * v / ymax
            out.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{c}"><title>{_e(name)} {_e(labels[i])}: '
                f"{_e(yfmt.format(v))}</title></circle>"
            )
    out.append("</svg>")
    return "".join(out) + _legend(list(series), colors)


def actual_vs_counterfactual(report: dict[str, Any]) -> str:
    """Cumulative actual spend against the all-premium counterfactual."""
    tl = report["timeline"]
    acc = cf = 0.0
    actual, counter = [], []
    for b in tl:
        acc += b["cost_usd"]
        cf += b["counterfactual_cost_usd"]
        actual.append(acc)
        counter.append(cf)
    labels = [_label(b["start"], report["bucket"]) for b in tl]
    series = {"all premium (counterfactual)": counter, "actual (tierroute)": actual}
    return _lines(CHART_IDS[1], "Cumulative spend: actual vs counterfactual", labels, series, "${:.4g}")


def rates(report: dict[str, Any]) -> str:
    """Fallback and escalation rates per bucket, in percent."""
    tl = report["timeline"]
    labels = [_label(b["start"], report["bucket"]) for b in tl]
    series = {
        "fallback rate %": [100 * b["fallback_rate"] for b in tl],
        "escalation rate %": [100 * b["escalation_rate"] for b in tl],
    }
    return _lines(CHART_IDS[2], "Fallback and escalation rates", labels, series, "{:.1f}%")


def confusion(report: dict[str, Any], tiers: list[str]) -> str:
    """Heat map: expected tier (rows) against decided tier (columns), with counts."""
    conf = report["routing_accuracy"]["confusion"]
    names = [t for t in tiers if t in conf or any(t in v for v in conf.values())]
    names += sorted({*conf, *(d for v in conf.values() for d in v)} - set(names))
    n = max(1, len(names))
    cell = min(80.0, (H - 70) / n)
    top = 40.0
    width = 140 + cell * n + 20
    peak = max((c for v in conf.values() for c in v.values()), default=1)
    out = [
        f'<svg class="chart" id="{CHART_IDS[3]}" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{H}" viewBox="0 0 {width:.0f} {H}" role="img" aria-label="Routing accuracy">'
        "<title>Routing: expected tier (rows) vs decided tier (columns)</title>",
        f'<text x="{140 + cell * n / 2:.1f}" y="16" text-anchor="middle">decided tier</text>',
    ]
    if not conf:
        out.append(f'<text x="20" y="{top + 20}">no request carried expected_tier metadata</text>')
    for j, d in enumerate(names):
        out.append(f'<text x="{140 + cell * (j + 0.5):.1f}" y="{top - 6}" text-anchor="middle">{_e(d)}</text>')
    for i, e in enumerate(names if conf else []):
        y = top + cell * i
        out.append(f'<text x="130" y="{y + cell / 2 + 4:.1f}" text-anchor="end">expected {_e(e)}</text>')
        for j, d in enumerate(names):
            c = conf.get(e, {}).get(d, 0)
            alpha = 0.08 + 0.85 * c / peak if c else 0.03
            hue = "42,157,143" if e == d else "231,111,81"
            out.append(
                f'<rect class="cell" x="{140 + cell * j:.1f}" y="{y:.1f}" width="{cell - 2:.1f}" '
                f'height="{cell - 2:.1f}" fill="rgba({hue},{alpha:.2f})"><title>expected {_e(e)}, decided {_e(d)}: '
                f'{c}</title></rect><text x="{140 + cell * (j + 0.5):.1f}" y="{y + cell / 2 + 4:.1f}" '
                f'text-anchor="middle">{c}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def latency(report: dict[str, Any]) -> str:
    """p50 and p95 latency per tier (grouped bars)."""
    tiers = list(report["by_tier"])
    vals = [
        (report["by_tier"][t].get("latency_p50_ms") or 0.0, report["by_tier"][t].get("latency_p95_ms") or 0.0)
        for t in tiers
    ]
    ymax = _nice_max(max((v for pair in vals for v in pair), default=0.0))
    out = _frame(CHART_IDS[4], "Latency by tier (ms)", ymax, "{:.0f} ms", tiers)
    n, pw, ph = max(1, len(tiers)), W - ML - MR, H - MT - MB
    bw = min(60.0, pw / n * 0.35)
    for i, (p50, p95) in enumerate(vals):
        cx = ML + pw * (i + 0.5) / n
        for k, (v, c, name) in enumerate(((p50, "#2a9d8f", "p50"), (p95, "#e76f51", "p95"))):
            h = ph * v / ymax
            x = cx - bw + k * bw
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{MT + ph - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
                f'fill="{c}"><title>{_e(tiers[i])} {name}: {v:.1f} ms</title></rect>'
            )
    out.append("</svg>")
    return "".join(out) + _legend(["p50", "p95"], ["#2a9d8f", "#e76f51"])


def _table(report: dict[str, Any]) -> str:
    rows = []
    for name, s in report["by_tier"].items():
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{s['requests']}</td><td>{_usd(s['cost_usd'])}</td>"
            f"<td>{_usd(s['counterfactual_cost_usd'])}</td><td>{s['savings_pct']:.1f}%</td>"
            f"<td>{s['fallback_rate']:.2%}</td><td>{s['error_rate']:.2%}</td></tr>"
        )
    head = "<tr><th>tier</th><th>requests</th><th>spend</th><th>counterfactual</th><th>saving</th>"
    head += "<th>fallback rate</th><th>error rate</th></tr>"
    return f'<table id="by-tier">{head}{"".join(rows)}</table>'


def render_html(
    report: dict[str, Any], *, tiers: list[str] | None = None, title: str = "tierroute spend report"
) -> str:
    """The report as a self-contained HTML page (inline CSS and SVG; no script, no external resource)."""
    order = [t for t in (tiers or []) if t in report["by_tier"]] + [
        t for t in report["by_tier"] if t not in (tiers or [])
    ]
    for b in report["timeline"]:
        order += [t for t in b["cost_by_tier"] if t not in order]
    r = report
    acc = r["routing_accuracy"]
    cards = [
        ("spend", _usd(r["cost_usd"])),
        ("all-premium counterfactual", _usd(r["counterfactual_cost_usd"])),
        ("saving", f"{r['savings_pct']:.1f}%"),
        ("requests", f"{r['requests']:,}"),
        ("fallback rate", f"{r['fallback_rate']:.2%}"),
        ("escalation rate", f"{r['escalation_rate']:.2%}"),
        ("routing accuracy", "-" if acc["accuracy"] is None else f"{acc['accuracy']:.1%} of {acc['labelled']}"),
    ]
    bucket = _BUCKET_WORD.get(r["bucket"], r["bucket"])
    card_html = "".join(f'<div class="card"><span>{_e(k)}</span><b>{_e(v)}</b></div>' for k, v in cards)
    data = _e(json.dumps({k: r[k] for k in ("requests", "cost_usd", "counterfactual_cost_usd", "savings_pct")}))
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f'<style>{_CSS}</style></head><body data-summary="{data}">'
        f'<h1>{_e(title)}</h1><div class="sub">ledger {_e(r["ledger"])} &middot; {_e(r["first"] or "-")} to '
        f"{_e(r['last'] or '-')} &middot; {r['requests']:,} requests &middot; {bucket} buckets (UTC)</div>"
        f'<div class="cards">{card_html}</div>'
        f"<h2>Spend by tier over time</h2>{spend_by_tier(r, order)}"
        f"<h2>Actual vs counterfactual (everything on the premium tier)</h2>{actual_vs_counterfactual(r)}"
        f"<h2>Fallback and escalation rates</h2>{rates(r)}"
        f"<h2>Routing accuracy vs expected_tier</h2>{confusion(r, order)}"
        f"<h2>Latency by tier</h2>{latency(r)}"
        f"<h2>By tier</h2>{_table(r)}</body></html>"
    )


def write_html(report: dict[str, Any], path: str | Path, *, tiers: list[str] | None = None) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(report, tiers=tiers), encoding="utf-8")
    return p
