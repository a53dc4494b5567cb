"""Importers on the real RouteLLM / LLMRouter files from TIERROUTE_DATA_DIR, and the verified download."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tierroute.errors import ConfigError
from tierroute.evaluate.data import DATASETS, dataset_files, default_data_dir, download, resolve_data_dir, source_urls
from tierroute.evaluate.importers import (
    LLMROUTER_MODELS,
    STRONG,
    WEAK,
    load_llmrouter,
    load_llmrouter_prices,
    load_routellm_gsm8k,
    load_routellm_mmlu,
)


@pytest.fixture(scope="module")
def data_dir() -> Path:
    folder = default_data_dir()
    # No skip: the evidence tests must fail loudly when the data is not where TIERROUTE_DATA_DIR says.
    assert (folder / "routellm" / "mmlu").is_dir(), f"routing data not found at {folder}; set TIERROUTE_DATA_DIR"
    return folder


def mean(rows: list, model: str) -> float:  # type: ignore[type-arg]
    return sum(r.scores[model] for r in rows) / len(rows)


def test_mmlu_drops_contaminated_and_matches_published_accuracy(data_dir: Path) -> None:
    rows = load_routellm_mmlu(data_dir)
    assert len(rows) == 14042 - 5
    assert len({r.task_type for r in rows}) == 57
    assert len({r.id for r in rows}) == len(rows)
    assert mean(rows, STRONG) == pytest.approx(0.806, abs=0.001)
    assert mean(rows, WEAK) == pytest.approx(0.681, abs=0.001)
    assert all(r.prompt and r.prompt.rstrip().endswith("Answer:") for r in rows[:50])
    assert len(load_routellm_mmlu(data_dir, drop_contaminated=False)) == 14042


def test_gsm8k_drops_contaminated_and_keeps_responses_on_request(data_dir: Path) -> None:
    rows = load_routellm_gsm8k(data_dir, keep_responses=True)
    assert len(rows) == 1319 - 12
    assert mean(rows, STRONG) == pytest.approx(0.858, abs=0.001)
    assert mean(rows, WEAK) == pytest.approx(0.637, abs=0.001)
    assert set(rows[0].responses) == {STRONG, WEAK} and all(len(t) > 20 for t in rows[0].responses.values())


def test_llmrouter_rows_tasks_and_estimated_costs(data_dir: Path) -> None:
    rows = load_llmrouter(data_dir)
    prices = load_llmrouter_prices(data_dir)
    assert len(rows) == 5608
    assert set(rows[0].scores) == set(LLMROUTER_MODELS)
    assert "unknown" not in {r.task_type for r in rows}
    assert {"mmlu", "gsm8k", "human_eval", "mbpp"} <= {r.task_type for r in rows}
    r = rows[0]
    for m in LLMROUTER_MODELS:
        tok = r.tokens[m]
        assert r.costs[m] == pytest.approx((tok["prompt"] + tok["completion"]) * prices[m])
    assert prices["gemma-2-9b-it"] == pytest.approx(0.10 / 1e6)


def test_missing_data_is_a_config_error_naming_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIERROUTE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(ConfigError) as ei:
        load_routellm_gsm8k(tmp_path / "nothing-here")
    assert "TIERROUTE_DATA_DIR" in str(ei.value) and "--download" in str(ei.value)


class _Mirror(BaseHTTPRequestHandler):
    """Serves files laid out like raw.githubusercontent.com: /{owner}/{repo}/{commit}/{path}."""

    root: Path
    table: dict[str, Path]

    def do_GET(self) -> None:
        target = self.table.get(self.path)
        if target is None:
            self.send_response(404)
            self.end_headers()
            return
        body = target.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def mirror(data_dir: Path) -> Iterator[tuple[str, dict[str, Path]]]:
    table: dict[str, Path] = {}
    for dataset in DATASETS:
        for rel, url in source_urls(dataset, "http://mirror").items():
            table[url.removeprefix("http://mirror")] = data_dir / rel
    handler = type("H", (_Mirror,), {"table": table})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", table
    finally:
        server.shutdown()
        server.server_close()


def test_download_fetches_and_verifies_every_file(
    tmp_path: Path, mirror: tuple[str, dict[str, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    base, _ = mirror
    monkeypatch.setenv("TIERROUTE_CACHE_DIR", str(tmp_path / "cache"))
    folder = resolve_data_dir("routellm-gsm8k", tmp_path / "empty", download_missing=True, base_url=base)
    assert folder == tmp_path / "cache" / "data"
    assert all((folder / rel).is_file() for rel in dataset_files("routellm-gsm8k"))
    assert len(load_routellm_gsm8k(folder)) == 1307


def test_download_rejects_a_file_whose_checksum_differs(tmp_path: Path, mirror: tuple[str, dict[str, Path]]) -> None:
    base, table = mirror
    bad = tmp_path / "tampered.jsonl"
    bad.write_text('{"eval_prompt": "x"}\n')
    for url in list(table):
        if url.endswith("gsm8k/contaminated_prompts.jsonl"):
            table[url] = bad
    with pytest.raises(ConfigError, match="SHA-256"):
        download("routellm-gsm8k", tmp_path / "dl", base_url=base)
