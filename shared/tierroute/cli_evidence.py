"""``tierroute bench``, ``tierroute train`` and ``tierroute eval``: the evidence loop from the shell.

``cli.py`` registers them (``main.add_command(bench)`` ...); ``python -m tierroute.cli_evidence`` runs them alone.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from tierroute.errors import ConfigError, TierRouteError

__all__ = ["bench", "evidence", "eval_command", "train"]

DATASET_PREFIX = "dataset:"


def _pairs(items: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{item!r} is not A=B", param_hint=option)
        out[key] = value
    return out


def _target(items: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in _pairs(items, "--target").items():
        try:
            out[key] = float(value)
        except ValueError:
            raise click.BadParameter(f"{key}={value!r}: the value must be a number", param_hint="--target") from None
    return out


def _prices(items: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    for model, spec in _pairs(items, "--price").items():
        parts = spec.split(",")
        try:
            pin, pout = float(parts[0]), float(parts[-1])
        except ValueError:
            raise click.BadParameter(
                f"{model}={spec!r}: use MODEL=IN,OUT (USD per 1M tokens)", param_hint="--price"
            ) from None
        out[model] = (pin / 1e6, pout / 1e6)
    return out


def _load_rows(spec: str, data_dir: str | None, download: bool, model_map: dict[str, str]) -> list[Any]:
    """Rows of a matrix file, or of ``dataset:NAME`` (routellm-mmlu, routellm-gsm8k, llmrouter)."""
    from tierroute.bench.matrix import read_matrix, rename_models

    if spec.startswith(DATASET_PREFIX):
        from tierroute.evaluate.importers import load_dataset

        rows = load_dataset(spec.removeprefix(DATASET_PREFIX), data_dir, download=download)  # type: ignore[arg-type]
    else:
        rows = read_matrix(spec)
    return rename_models(rows, model_map)


def _fail(exc: TierRouteError) -> None:
    raise click.ClickException(str(exc)) from None


@click.command("bench")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False), help="tierroute config.")
@click.option(
    "--samples",
    "samples",
    required=True,
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Sample file (YAML or JSONL); repeatable.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder (resumable).")
@click.option("--models", default=None, help="Comma-separated model groups (default: every tier).")
@click.option("--threshold", default=0.8, show_default=True, help="Quality bar for the routing map (on the LCB).")
@click.option("--concurrency", default=8, show_default=True, help="Calls in flight at once.")
@click.option("--timeout", "timeout_s", default=60.0, show_default=True, help="Per-call timeout (s).")
@click.option("--retries", default=3, show_default=True, help="Retries of a recoverable failure.")
@click.option("--judge", default=None, help="Tier that grades judge-scored samples.")
@click.option("--max-tokens", default=None, type=int, help="max_tokens for every call.")
@click.option("--seed", default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def bench(
    config_path: str,
    samples: tuple[str, ...],
    out_dir: str,
    models: str | None,
    threshold: float,
    concurrency: int,
    timeout_s: float,
    retries: int,
    judge: str | None,
    max_tokens: int | None,
    seed: int,
    no_progress: bool,
    as_json: bool,
) -> None:
    """Step 0: run task samples on the config's models; write the quality matrix, table, heatmap and routing map.

    Re-running the same command resumes: finished calls are read from OUT/calls.jsonl, not sent again.
    """
    from tierroute.bench.pipeline import run_step0
    from tierroute.bench.runner import BenchOptions

    params: dict[str, Any] = {"temperature": 0}
    if max_tokens:
        params["max_tokens"] = max_tokens
    opts = BenchOptions(
        models=[m.strip() for m in models.split(",") if m.strip()] if models else None,
        concurrency=concurrency,
        timeout_s=timeout_s,
        retries=retries,
        params=params,
        judge=judge,
        progress=not no_progress and not as_json,
    )
    try:
        result = asyncio.run(run_step0(config_path, list(samples), out_dir, opts, threshold=threshold, seed=seed))
    except TierRouteError as exc:
        _fail(exc)
    except KeyboardInterrupt:
        click.echo(
            f"interrupted; finished calls are kept in {out_dir}/calls.jsonl: run the same command to resume", err=True
        )
        sys.exit(130)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    click.echo(Path(result.paths["table"]).read_text(encoding="utf-8"))
    click.echo(
        f"calls sent: {result.run.calls_made}, from cache: {result.run.calls_cached}, failed: {len(result.run.failed)}"
    )
    for name in ("matrix", "table", "heatmap", "routing"):
        click.echo(f"{name}: {result.paths[name]}")


@click.command("train")
@click.option(
    "--matrix",
    "matrices",
    required=True,
    multiple=True,
    help="Quality matrix JSONL, or dataset:NAME (routellm-mmlu, routellm-gsm8k, llmrouter); repeatable.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Artifact folder.")
@click.option(
    "--family",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "logistic", "mlp", "mf", "knn"]),
    help="Model family.",
)
@click.option("--model-map", multiple=True, metavar="A=B", help="Rename model A to B (e.g. to a tier name).")
@click.option("--order", default=None, help="Models cheapest first, comma-separated (default: by cost or score).")
@click.option(
    "--target",
    multiple=True,
    metavar="RULE=VALUE",
    help="Default decision target, e.g. premium_share=0.15 or min_success=0.8.",
)
@click.option("--price", multiple=True, metavar="MODEL=IN,OUT", help="USD per 1M tokens for rows without costs.")
@click.option("--seed", default=0, show_default=True)
@click.option("--data-dir", default=None, help="Folder of the public datasets (default: $TIERROUTE_DATA_DIR).")
@click.option("--download", is_flag=True, help="Download missing datasets into the user cache.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def train(
    matrices: tuple[str, ...],
    out_dir: str,
    family: str,
    model_map: tuple[str, ...],
    order: str | None,
    target: tuple[str, ...],
    price: tuple[str, ...],
    seed: int,
    data_dir: str | None,
    download: bool,
    as_json: bool,
) -> None:
    """Train the classifier router on quality matrices and save it (JSON + .npz, no pickle)."""
    from tierroute.bench.matrix import complete_models
    from tierroute.evaluate.training import TrainOptions, train_classifier

    mapping = _pairs(model_map, "--model-map")
    try:
        rows = [r for spec in matrices for r in _load_rows(spec, data_dir, download, mapping)]
        models = complete_models(rows)
        if len(models) < 2:
            raise ConfigError(
                "training needs at least two models scored in every row",
                hint="use --model-map to align model names across matrices",
            )
        opts = TrainOptions(
            family=family,
            seed=seed,
            order=order.split(",") if order else None,
            prices=_prices(price) or None,
            default_target=_target(target) or {"max_drop": 0.0},
        )
        say = (lambda _m: None) if as_json else (lambda m: click.echo(m, err=True))
        clf = train_classifier(rows, models, opts, progress=say)
        clf.save(out_dir)
    except TierRouteError as exc:
        _fail(exc)
    info = {"path": out_dir, "models": clf.models, "encoder": clf.spec["encoder"], **clf.info}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(
        f"saved {out_dir}: {info['family']} {info['params']} on {info['rows']} prompts "
        f"({info['train_s']}s), models cheapest first: {', '.join(clf.models)}"
    )


@click.command("eval")
@click.option(
    "--test",
    "test_spec",
    required=True,
    help="Quality matrix JSONL to evaluate on, or dataset:NAME (routellm-mmlu, routellm-gsm8k, llmrouter).",
)
@click.option("--train", "train_specs", multiple=True, help="Train on these matrices instead of k-fold CV.")
@click.option(
    "--router",
    "routers",
    multiple=True,
    help="classifier | random | oracle | config:PATH (repeatable; default classifier).",
)
@click.option("--folds", default=5, show_default=True, help="Folds of the cross-validation by prompt.")
@click.option("--predictions", default=None, type=click.Path(dir_okay=False), help="Write predictions JSONL here.")
@click.option("--plot", default=None, type=click.Path(dir_okay=False), help="Write the curves as a PNG here.")
@click.option(
    "--family",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "logistic", "mlp", "mf", "knn"]),
    help="Classifier model family.",
)
@click.option("--model-map", multiple=True, metavar="A=B", help="Rename model A to B in every matrix.")
@click.option("--target", multiple=True, metavar="RULE=VALUE", help="Classifier target for its choices.")
@click.option("--strong", default=None, help="Strong model of the pair (default: best mean score).")
@click.option("--weak", default=None, help="Weak model of the pair (default: cheapest, else weakest).")
@click.option("--cost-cap", default=None, type=float, help="USD per request for quality-at-cost (default half best).")
@click.option("--price", multiple=True, metavar="MODEL=IN,OUT", help="USD per 1M tokens for rows without costs.")
@click.option("--seed", default=0, show_default=True, help="Seed of folds, random router and training.")
@click.option("--data-dir", default=None, help="Folder of the public datasets (default: $TIERROUTE_DATA_DIR).")
@click.option("--download", is_flag=True, help="Download missing datasets into the user cache.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def eval_command(
    test_spec: str,
    train_specs: tuple[str, ...],
    routers: tuple[str, ...],
    folds: int,
    predictions: str | None,
    plot: str | None,
    family: str,
    model_map: tuple[str, ...],
    target: tuple[str, ...],
    strong: str | None,
    weak: str | None,
    cost_cap: float | None,
    price: tuple[str, ...],
    seed: int,
    data_dir: str | None,
    download: bool,
    as_json: bool,
) -> None:
    """Replay routers on a quality matrix: APGR and CPT(50%/80%), quality-cost curve, cost to match the best model."""
    from tierroute.evaluate.report import plot_eval, run_eval
    from tierroute.evaluate.training import TrainOptions

    mapping = _pairs(model_map, "--model-map")
    chosen = list(routers) or ["classifier"]
    if (strong is None) != (weak is None):
        raise click.BadParameter("give both --strong and --weak, or neither", param_hint="--strong/--weak")
    try:
        test = _load_rows(test_spec, data_dir, download, mapping)
        train_rows = [r for s in train_specs for r in _load_rows(s, data_dir, download, mapping)] or None
        all_routers = list(dict.fromkeys([*chosen, "random", "oracle", "single"]))
        opts = TrainOptions(family=family, seed=seed, prices=_prices(price) or None)
        say = (lambda _m: None) if as_json else (lambda m: click.echo(m, err=True))
        result, replays = run_eval(
            test,
            train=train_rows,
            routers=all_routers,
            folds=folds,
            opts=opts,
            target=_target(target) or None,
            pair=(strong, weak) if strong and weak else None,
            cost_cap=cost_cap,
            progress=say,
        )
    except TierRouteError as exc:
        _fail(exc)
    main_name = (
        chosen[0]
        if chosen[0] in replays
        else next((n for n in replays if n.split(":")[0] == chosen[0].split(":")[0]), "classifier")
    )
    out = result.to_dict()
    if predictions:
        Path(predictions).parent.mkdir(parents=True, exist_ok=True)
        with open(predictions, "w", encoding="utf-8") as fh:
            for p in replays[main_name].predictions(test):
                fh.write(json.dumps(p.to_dict()) + "\n")
        out["predictions"] = {"path": predictions, "router": main_name}
    if plot:
        out["plot"] = plot_eval(result, replays, test, plot)
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(result.to_text())
    for key in ("predictions", "plot"):
        if key in out:
            click.echo(f"{key}: {out[key]['path'] if key == 'predictions' else out[key]}")


@click.group()
def evidence() -> None:
    """The evidence loop: bench, train, eval."""


evidence.add_command(bench)
evidence.add_command(train)
evidence.add_command(eval_command)

if __name__ == "__main__":  # pragma: no cover
    evidence()
