"""Importers: public recorded model outcomes -> quality-matrix rows.

- RouteLLM MMLU (57 subject CSVs) and GSM8K: GPT-4-1106-preview vs Mixtral-8x7B correctness, with the
  contaminated prompts (those seen in RouteLLM's training data) dropped as RouteLLM does.
- LLMRouter ``train.json``: 9 open models' scores per query, the task of each query from
  ``query_train.jsonl``, prices from ``models.json``. There are no token counts: prompt tokens are counted with
  cl100k (or estimated at 4 characters per token) and completion tokens are a per-metric estimate
  (:data:`COMPLETION_TOKENS`), so costs are ``(prompt + completion) x price``.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from tierroute.bench.matrix import QualityRow
from tierroute.errors import ConfigError
from tierroute.evaluate.data import Dataset, resolve_data_dir

__all__ = [
    "COMPLETION_TOKENS",
    "LLMROUTER_MODELS",
    "STRONG",
    "WEAK",
    "load_dataset",
    "load_llmrouter",
    "load_llmrouter_prices",
    "load_routellm_gsm8k",
    "load_routellm_mmlu",
]

STRONG = "gpt-4-1106-preview"
WEAK = "mixtral-8x7b-instruct-v0.1"
_CSV_COLUMNS = {STRONG: "gpt-4-1106-preview", WEAK: "mistralai/Mixtral-8x7B-Instruct-v0.1"}

#: Estimated completion tokens per LLMRouter metric (the dataset records none): short answers for multiple
#: choice, a sentence for QA, worked solutions for math, a function for code.
COMPLETION_TOKENS = {
    "em_mc": 8,
    "f1_score": 24,
    "commongen_coverage": 48,
    "GSM8K": 220,
    "MATH": 320,
    "code_eval": 200,
}
_DEFAULT_COMPLETION = 64

#: The 9 LLMRouter models that have scores in ``train.json``.
LLMROUTER_MODELS = (
    "qwen2.5-7b-instruct",
    "codegemma-7b",
    "gemma-2-9b-it",
    "llama-3.1-8b-instruct",
    "llama3-chatqa-1.5-8b",
    "mistral-7b-instruct-v0.3",
    "llama-3.3-nemotron-super-49b-v1",
    "llama-3.1-nemotron-51b-instruct",
    "llama3-chatqa-1.5-70b",
)


def _csv_field_limit() -> None:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def _bool(value: str, where: str) -> float:
    v = value.strip().lower()
    if v in ("true", "1", "1.0"):
        return 1.0
    if v in ("false", "0", "0.0"):
        return 0.0
    raise ConfigError(f"expected True/False, got {value!r}", path=where, hint="is this the RouteLLM responses CSV?")


def _contaminated(path: Path) -> set[str]:
    out = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if line.strip():
            try:
                out.add(str(json.loads(line)["eval_prompt"]))
            except (ValueError, KeyError) as exc:
                raise ConfigError(f"bad contamination entry: {exc}", path=f"{path}:{n}") from None
    return out


def _routellm_rows(
    csv_path: Path, task: str, id_prefix: str, drop: set[str], keep_responses: bool
) -> tuple[list[QualityRow], int]:
    _csv_field_limit()
    rows: list[QualityRow] = []
    dropped = 0
    with csv_path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("prompt", *_CSV_COLUMNS.values()) if c not in (reader.fieldnames or [])]
        if missing:
            raise ConfigError(f"columns {missing} missing", path=str(csv_path), hint="expected RouteLLM's CSV layout")
        for i, rec in enumerate(reader):
            prompt = rec["prompt"]
            if prompt in drop:
                dropped += 1
                continue
            where = f"{csv_path}:{i + 2}"
            scores = {m: _bool(rec[col], where) for m, col in _CSV_COLUMNS.items()}
            responses = {}
            if keep_responses:
                responses = {m: rec[f"{col}_response"] for m, col in _CSV_COLUMNS.items() if f"{col}_response" in rec}
            rows.append(
                QualityRow(id=f"{id_prefix}-{i}", prompt=prompt, task_type=task, scores=scores, responses=responses)
            )
    return rows, dropped


def load_routellm_mmlu(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    drop_contaminated: bool = True,
) -> list[QualityRow]:
    """RouteLLM's MMLU outcomes: 14,042 prompts (14,037 after dropping the 5 contaminated), subject as task_type.

    Raises:
        ConfigError: The data is not found (see :func:`~tierroute.evaluate.data.resolve_data_dir`) or malformed.
    """
    folder = resolve_data_dir("routellm-mmlu", data_dir, download_missing=download) / "routellm" / "mmlu"
    drop = _contaminated(folder / "contaminated_prompts.jsonl") if drop_contaminated else set()
    rows: list[QualityRow] = []
    for path in sorted(folder.glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        part, _ = _routellm_rows(path, subject, f"mmlu-{subject}", drop, keep_responses=False)
        rows.extend(part)
    return rows


def load_routellm_gsm8k(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    drop_contaminated: bool = True,
    keep_responses: bool = False,
) -> list[QualityRow]:
    """RouteLLM's GSM8K outcomes: 1,319 problems (1,307 after dropping the 12 contaminated).

    Args:
        data_dir: Folder holding ``routellm/gsm8k`` (default: see :func:`resolve_data_dir`).
        download: Fetch the files into the user cache when missing.
        drop_contaminated: Drop the prompts listed in ``contaminated_prompts.jsonl``.
        keep_responses: Keep each model's answer text in ``responses``.
    """
    folder = resolve_data_dir("routellm-gsm8k", data_dir, download_missing=download) / "routellm" / "gsm8k"
    drop = _contaminated(folder / "contaminated_prompts.jsonl") if drop_contaminated else set()
    rows, _ = _routellm_rows(folder / "gsm8k_responses.csv", "gsm8k", "gsm8k", drop, keep_responses)
    return rows


def load_llmrouter_prices(
    data_dir: str | os.PathLike[str] | None = None, *, download: bool = False
) -> dict[str, float]:
    """LLMRouter ``models.json``: model -> USD per token (input and output prices are equal there)."""
    folder = resolve_data_dir("llmrouter", data_dir, download_missing=download) / "llmrouter"
    data = json.loads((folder / "models.json").read_text(encoding="utf-8"))
    return {name: float(spec["input_price"]) / 1e6 for name, spec in data.items()}


def _token_counter() -> Callable[[str], int]:
    try:
        from tierroute.tokens import count_tokens

        count_tokens("probe")
        return count_tokens
    except Exception:  # tiktoken missing: a rough estimate keeps costs proportional
        return lambda text: max(1, len(text) // 4)


def load_llmrouter(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
) -> list[QualityRow]:
    """LLMRouter's ``train.json``: 5,608 queries x 9 models, task_type from ``query_train.jsonl``.

    Each row gets estimated ``tokens`` and ``costs`` per model (see the module docstring).
    """
    folder = resolve_data_dir("llmrouter", data_dir, download_missing=download) / "llmrouter"
    records = json.loads((folder / "train.json").read_text(encoding="utf-8"))
    meta: dict[str, tuple[str, str]] = {}
    for line in (folder / "query_train.jsonl").read_text(encoding="utf-8").split("\n"):
        if line.strip():
            q = json.loads(line)
            meta.setdefault(str(q["query"]), (str(q["task_name"]), str(q.get("metric") or "")))
    prices = load_llmrouter_prices(folder.parent)
    count = _token_counter()
    rows: list[QualityRow] = []
    per_task: dict[str, int] = {}
    for n, rec in enumerate(records):
        question = str(rec["question"])
        task, metric = meta.get(question, ("unknown", ""))
        scores = {str(m): float(v) for m, v in rec["scores"].items()}
        unknown = sorted(set(scores) - set(prices))
        if unknown:
            raise ConfigError(f"models {unknown} have no price", path=f"{folder / 'train.json'}[{n}]")
        p_tok = count(question)
        c_tok = COMPLETION_TOKENS.get(metric, _DEFAULT_COMPLETION)
        k = per_task.get(task, 0)
        per_task[task] = k + 1
        rows.append(
            QualityRow(
                id=f"llmrouter-{task}-{k}",
                prompt=question,
                task_type=task,
                scores=scores,
                costs={m: (p_tok + c_tok) * prices[m] for m in scores},
                tokens={m: {"prompt": p_tok, "completion": c_tok} for m in scores},
                metadata={"metric": metric},
            )
        )
    return rows


def load_dataset(
    name: Dataset, data_dir: str | os.PathLike[str] | None = None, *, download: bool = False
) -> list[QualityRow]:
    """Rows of a named dataset: ``routellm-mmlu``, ``routellm-gsm8k`` or ``llmrouter``."""
    if name == "routellm-mmlu":
        return load_routellm_mmlu(data_dir, download=download)
    if name == "routellm-gsm8k":
        return load_routellm_gsm8k(data_dir, download=download)
    if name == "llmrouter":
        return load_llmrouter(data_dir, download=download)
    raise ConfigError(f"unknown dataset {name!r}", hint="use routellm-mmlu, routellm-gsm8k or llmrouter")
