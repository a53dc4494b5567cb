"""The ``tierroute`` command."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from tierroute.errors import ConfigError, TierRouteError

__all__ = ["main"]

DEFAULT_CONFIG = "examples/tierroute.yaml"


def _parse_metadata(items: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--metadata")
        out[key] = value
    return out


def _load_router(config: str) -> Any:
    from tierroute.router import TierRouter

    return TierRouter.from_yaml(config)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tierroute")
def main() -> None:
    """Route each LLM request to the cheapest model tier that clears your quality bar."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def validate(config: str, as_json: bool) -> None:
    """Check a config file; print every problem and exit 1 if there are any."""
    from tierroute.config import RouterConfig

    try:
        cfg = RouterConfig.from_yaml(config)
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": [p.__dict__ for p in exc.problems]}))
        else:
            click.echo(f"{config}: {len(exc.problems)} problem(s)", err=True)
            for p in exc.problems:
                click.echo(f"  {p}", err=True)
        sys.exit(1)
    warnings = cfg.warnings()
    if as_json:
        click.echo(json.dumps({"ok": True, "tiers": cfg.tiers, "warnings": warnings}))
        return
    click.echo(f"{config}: ok ({len(cfg.tiers)} tiers: {', '.join(cfg.tiers)}; {len(cfg.routing.rules)} rules)")
    for w in warnings:
        click.echo(f"  warning: {w}")


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("prompt")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--explain", is_flag=True, help="Show every layer's verdict.")
@click.option(
    "--metadata", "-m", multiple=True, metavar="KEY=VALUE", help="Request metadata, e.g. task_type=summarization."
)
def route(config: str, prompt: str, as_json: bool, explain: bool, metadata: tuple[str, ...]) -> None:
    """Decide which tier a PROMPT goes to (no model is called)."""
    meta = _parse_metadata(metadata)
    try:
        decision = _load_router(config).decide(prompt, metadata=meta, explain=explain)
    except TierRouteError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(decision.to_dict()))
        return
    score = "-" if decision.score is None else f"{decision.score:.3f}"
    click.echo(f"tier: {decision.tier}\nlayer: {decision.layer}\nscore: {score}\nreason: {decision.reason}")
    if explain:
        click.echo("layers:")
        for v in decision.verdicts:
            s = "-" if v.score is None else f"{v.score:.3f}"
            click.echo(f"  {v.layer:<10} {v.tier or '(abstain)':<10} {s:>6}  {v.reason}")


def _demo_table(rows: list[dict[str, Any]], title: str) -> Any:
    from rich.table import Table

    table = Table(title=title)
    executed = any("served_model" in r for r in rows)
    cols = ["#", "prompt", "tier", "layer", "reason"]
    if executed:
        cols += ["served by", "cost", "outcome"]
    for col in cols:
        table.add_column(col, overflow="fold", justify="right" if col == "cost" else "left")
    for i, r in enumerate(rows, 1):
        prompt = str(r["prompt"]).replace("\n", " ")
        prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        if r["metadata"]:
            prompt += f"  {r['metadata']}"
        cells = [str(i), prompt, str(r.get("tier")), str(r.get("layer")), str(r.get("reason"))]
        if executed:
            served = r.get("served_model") or "-"
            if r.get("served_tier") and r.get("served_tier") != r.get("tier"):
                served = f"{r['served_tier']}: {served}"
            cells += [served, f"${r.get('cost_usd') or 0.0:.6f}", str(r.get("outcome"))]
        table.add_row(*cells)
    return table


@main.command()
@click.option("--config", default=DEFAULT_CONFIG, show_default=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--fake", is_flag=True, help="Use FakeProvider even when provider API keys are set.")
@click.option("--decide-only", is_flag=True, help="Only route the prompts; call no model, write no ledger.")
@click.option("--ledger", "ledger_url", default=None, help="Ledger URL (default: a temp SQLite file when fake).")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False), help="Also write the HTML report.")
@click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256))
def demo(
    config: str,
    as_json: bool,
    fake: bool,
    decide_only: bool,
    ledger_url: str | None,
    html_path: str | None,
    concurrency: int,
) -> None:
    """Run the built-in prompts end to end (routing, cascade, ledger) and print the spend report.

    Against the configured providers when their API keys are set, otherwise against FakeProvider (a local fake
    server; the output says so).
    """
    from rich.console import Console

    from tierroute.demo_prompts import DEMO_PROMPTS

    if not Path(config).is_file():
        raise click.ClickException(f"config {config!r} not found; pass --config PATH (see examples/tierroute.yaml)")
    router = _load_router(config)
    console = Console(width=max(120, Console().width))
    if decide_only:
        rows = []
        for item in DEMO_PROMPTS:
            d = router.decide(str(item["prompt"]), metadata=item.get("metadata") or {})
            rows.append({"prompt": item["prompt"], "metadata": item.get("metadata") or {}, **d.to_dict()})
        result = None
    else:
        from tierroute.demo import run_demo

        try:
            result = run_demo(
                router.config, ledger_url=ledger_url, fake=True if fake else None, concurrency=concurrency
            )
        except TierRouteError as exc:
            raise click.ClickException(str(exc)) from None
        rows = result.rows
    mix = Counter(r["tier"] for r in rows)
    if as_json:
        out: dict[str, Any] = {"decisions": rows, "tier_mix": dict(mix)}
        if result is not None:
            out.update(mode=result.mode, note=result.note, ledger=result.ledger_url, faults=result.faults)
            out["report"] = result.report
        click.echo(json.dumps(out, default=str))
        if html_path and result is not None:
            from tierroute.report_html import write_html

            write_html(result.report, html_path, tiers=router.config.tiers)
        return
    if result is not None:
        console.print(f"[bold]{'FAKE PROVIDER' if result.mode == 'fake' else 'LIVE'}[/bold]: {result.note}")
        if result.faults:
            console.print("faults injected so the cascade shows its work: " + "; ".join(result.faults))
    what = "routed and executed" if result is not None else "routed (decisions only; no model called)"
    console.print(_demo_table(rows, f"tierroute demo: {len(rows)} prompts {what} by {config}"))
    total = len(rows)
    mix_text = ", ".join(f"{t}: {mix.get(t, 0)} ({100 * mix.get(t, 0) / total:.0f}%)" for t in router.config.tiers)
    console.print(f"tier mix: {mix_text}")
    layers = Counter(r["layer"] for r in rows)
    console.print("decided by: " + ", ".join(f"{k}: {v}" for k, v in layers.most_common()))
    if result is not None:
        from tierroute.report import print_report

        console.print()
        print_report(result.report, console)
        r = result.report
        console.print(
            f"[bold]counterfactual saving[/bold]: ${r['cost_usd']:.6f} spent vs ${r['counterfactual_cost_usd']:.6f} "
            f"if every request had gone to {router.config.tiers[-1]}: {r['savings_pct']:.1f}% saved "
            f"(read back from the ledger {result.ledger_url})"
        )
        if html_path:
            from tierroute.report_html import write_html

            console.print(f"HTML report: {write_html(r, html_path, tiers=router.config.tiers)}")


@main.command()
@click.option("--ledger", "ledger_url", default=None, help="Ledger URL: sqlite:///file.db or postgresql://...")
@click.option("--config", default=None, type=click.Path(dir_okay=False), help="Take the ledger from this config.")
@click.option("--table", default=None, help="Ledger table (default: the config's, else tierroute_requests).")
@click.option("--schema", "db_schema", default=None, help="PostgreSQL schema of the table.")
@click.option("--since", default=None, help="From: 2025-01-31, 2025-01-31T09:00, 24h, 7d or epoch seconds.")
@click.option("--until", default=None, help="Until (exclusive); same forms as --since.")
@click.option("--group-by", default="tier", show_default=True, type=click.Choice(["tier", "model", "day", "key"]))
@click.option("--bucket", default="auto", show_default=True, type=click.Choice(["auto", "minute", "hour", "day"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--html", "html_path", default=None, type=click.Path(dir_okay=False), help="Write an HTML report.")
def report(
    ledger_url: str | None,
    config: str | None,
    table: str | None,
    db_schema: str | None,
    since: str | None,
    until: str | None,
    group_by: str,
    bucket: str,
    as_json: bool,
    html_path: str | None,
) -> None:
    """Spend report from the ledger: spend vs the all-premium counterfactual, by tier / model / day / key."""
    from tierroute.report import build_report, parse_time, print_report

    tiers: list[str] | None = None
    try:
        if config is not None:
            from tierroute.config import RouterConfig

            cfg = RouterConfig.from_yaml(config)
            tiers = cfg.tiers
            ledger_url = ledger_url or cfg.ledger.url
            table = table or cfg.ledger.table
            db_schema = db_schema or cfg.ledger.db_schema
        if not ledger_url:
            raise click.UsageError("give --ledger URL (or --config CONFIG with a ledger url)")
        data = build_report(
            ledger_url,
            table=table or "tierroute_requests",
            db_schema=db_schema,
            since=parse_time(since),
            until=parse_time(until),
            group_by=group_by,
            bucket=bucket,  # type: ignore[arg-type]
            tiers=tiers,
        )
    except TierRouteError as exc:
        raise click.ClickException(str(exc)) from None
    if html_path:
        from tierroute.report_html import write_html

        write_html(data, html_path, tiers=tiers)
    if as_json:
        click.echo(json.dumps(data))
        return
    from rich.console import Console

    print_report(data, Console(width=max(120, Console().width)))
    if html_path:
        click.echo(f"HTML report: {html_path}")


def _register_evidence_commands() -> None:
    from tierroute.cli_evidence import bench, eval_command, train

    main.add_command(bench)
    main.add_command(train)
    main.add_command(eval_command)


_register_evidence_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
