"""Where the public routing datasets live: a local folder, or a verified download into the user cache.

The folder is ``--data-dir``, else ``$TIERROUTE_DATA_DIR``, else ``../shared/data`` beside the repository
checkout. Its layout (the same one :func:`download` writes)::

    routellm/mmlu/mmlu_<subject>.csv, routellm/mmlu/contaminated_prompts.jsonl
    routellm/gsm8k/gsm8k_responses.csv, routellm/gsm8k/contaminated_prompts.jsonl
    llmrouter/train.json, llmrouter/query_train.jsonl, llmrouter/models.json

Downloads come from the public GitHub repositories at pinned commits (``sources.json``) and every file is
checked against its SHA-256 before it is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from tierroute.errors import ConfigError

__all__ = [
    "DATASETS",
    "Dataset",
    "data_cache_dir",
    "dataset_files",
    "default_data_dir",
    "download",
    "resolve_data_dir",
    "source_urls",
]

Dataset = Literal["routellm-mmlu", "routellm-gsm8k", "llmrouter"]
DATASETS: tuple[Dataset, ...] = ("routellm-mmlu", "routellm-gsm8k", "llmrouter")
ENV_VAR = "TIERROUTE_DATA_DIR"
RAW_BASE = "https://raw.githubusercontent.com"
_PREFIX: dict[str, tuple[str, str]] = {
    "routellm-mmlu": ("routellm", "mmlu/"),
    "routellm-gsm8k": ("routellm", "gsm8k/"),
    "llmrouter": ("llmrouter", ""),
}


@lru_cache(maxsize=1)
def _sources() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(__file__).with_name("sources.json")).read_text(encoding="utf-8"))
    return data


def dataset_files(dataset: Dataset) -> dict[str, dict[str, str]]:
    """The files of a dataset: path inside the data folder -> ``{"source": repo path, "sha256": ...}``."""
    if dataset not in _PREFIX:
        raise ConfigError(f"unknown dataset {dataset!r}", hint=f"use one of {', '.join(DATASETS)}")
    group, prefix = _PREFIX[dataset]
    files = _sources()[group]["files"]
    return {f"{group}/{k}": v for k, v in files.items() if k.startswith(prefix)}


def source_urls(dataset: Dataset, base_url: str | None = None) -> dict[str, str]:
    """Path inside the data folder -> download URL (pinned commit) for each file of a dataset."""
    group, _ = _PREFIX[dataset]
    meta = _sources()[group]
    base = (base_url or os.environ.get("TIERROUTE_DATA_BASE_URL") or RAW_BASE).rstrip("/")
    return {
        rel: f"{base}/{meta['repo']}/{meta['commit']}/{spec['source']}" for rel, spec in dataset_files(dataset).items()
    }


def default_data_dir() -> Path:
    """``$TIERROUTE_DATA_DIR``, else ``../shared/data`` relative to the repository root of this checkout."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parents[3]
    return (repo_root.parent / "shared" / "data").resolve()


def data_cache_dir() -> Path:
    """Where downloads go: ``$TIERROUTE_CACHE_DIR/data``, else ``~/.cache/tierroute/data``."""
    base = os.environ.get("TIERROUTE_CACHE_DIR") or str(Path.home() / ".cache" / "tierroute")
    return Path(base) / "data"


def _has(folder: Path, dataset: Dataset) -> bool:
    return all((folder / rel).is_file() for rel in dataset_files(dataset))


def resolve_data_dir(
    dataset: Dataset,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download_missing: bool = False,
    base_url: str | None = None,
) -> Path:
    """The folder holding a dataset.

    Args:
        dataset: Which dataset is needed.
        data_dir: An explicit folder (else ``$TIERROUTE_DATA_DIR`` or ``../shared/data``).
        download_missing: Download into the user cache when no folder has it.
        base_url: Mirror to download from (default: GitHub's raw file host).

    Raises:
        ConfigError: The dataset is not there and downloading was not asked for, or the download failed.
    """
    folder = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if _has(folder, dataset):
        return folder
    cache = data_cache_dir()
    if _has(cache, dataset):
        return cache
    if download_missing:
        download(dataset, cache, base_url=base_url)
        return cache
    missing = [rel for rel in dataset_files(dataset) if not (folder / rel).is_file()]
    raise ConfigError(
        f"dataset {dataset} not found in {str(folder)!r} (missing {missing[0]}"
        + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        + ")",
        path="data_dir",
        hint=f"set {ENV_VAR}=/path/to/shared/data, pass --data-dir, or pass --download to fetch it into {cache}",
    )


def download(
    dataset: Dataset,
    dest: str | os.PathLike[str] | None = None,
    *,
    base_url: str | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Download a dataset's files from their public source (pinned commit), verifying each SHA-256.

    Args:
        dataset: Which dataset.
        dest: Target folder (default: :func:`data_cache_dir`).
        base_url: Mirror laid out as ``{base}/{owner}/{repo}/{commit}/{path}`` (default: GitHub raw).
        timeout_s: Per-file timeout.

    Returns:
        The folder that now holds the dataset.

    Raises:
        ConfigError: A file could not be fetched or its checksum does not match.
    """
    import httpx

    target = Path(dest) if dest is not None else data_cache_dir()
    urls = source_urls(dataset, base_url)
    with httpx.Client(timeout=timeout_s, follow_redirects=True) as client:
        for rel, spec in dataset_files(dataset).items():
            out = target / rel
            if out.is_file() and _sha256(out.read_bytes()) == spec["sha256"]:
                continue
            url = urls[rel]
            try:
                resp = client.get(url)
                resp.raise_for_status()
            except httpx.HTTPError as exc:
                raise ConfigError(
                    f"cannot download {url}: {exc}",
                    path="data_dir",
                    hint=f"check the network, or put the files in a folder and set {ENV_VAR}",
                ) from None
            body = resp.content
            if _sha256(body) != spec["sha256"]:
                raise ConfigError(
                    f"{url} does not match its pinned SHA-256 (got {_sha256(body)[:12]}..., "
                    f"expected {spec['sha256'][:12]}...)",
                    path="data_dir",
                    hint="the source changed or a proxy altered it; download it by hand and set " + ENV_VAR,
                )
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".part")
            tmp.write_bytes(body)
            tmp.replace(out)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
