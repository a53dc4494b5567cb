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


@main.command()
@click.option("--config", default=DEFAULT_CONFIG, show_default=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def demo(config: str, as_json: bool) -> None:
    """Route the built-in demo prompts and print the routing table and the tier mix."""
    from rich.console import Console
    from rich.table import Table

    from tierroute.demo_prompts import DEMO_PROMPTS

    if not Path(config).is_file():
        raise click.ClickException(f"config {config!r} not found; pass --config PATH (see examples/tierroute.yaml)")
    router = _load_router(config)
    rows = []
    for item in DEMO_PROMPTS:
        d = router.decide(str(item["prompt"]), metadata=item.get("metadata") or {})
        rows.append({"prompt": item["prompt"], "metadata": item.get("metadata") or {}, **d.to_dict()})
    mix = Counter(r["tier"] for r in rows)
    if as_json:
        click.echo(json.dumps({"decisions": rows, "tier_mix": dict(mix)}))
        return
    console = Console(width=max(120, Console().width))
    table = Table(title=f"tierroute demo: {len(rows)} prompts routed by {config} (decisions only; no model called)")
    for col in ("#", "prompt", "tier", "layer", "reason"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(rows, 1):
        prompt = str(r["prompt"]).replace("\n", " ")
        prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        if r["metadata"]:
            prompt += f"  {r['metadata']}"
        table.add_row(str(i), prompt, r["tier"], r["layer"], r["reason"])
    console.print(table)
    total = len(rows)
    mix_text = ", ".join(f"{t}: {mix.get(t, 0)} ({100 * mix.get(t, 0) / total:.0f}%)" for t in router.config.tiers)
    console.print(f"tier mix: {mix_text}")
    layers = Counter(r["layer"] for r in rows)
    console.print("decided by: " + ", ".join(f"{k}: {v}" for k, v in layers.most_common()))


if __name__ == "__main__":  # pragma: no cover
    main()
