"""Scorers, sample files, and the LLM judge through LiteLLM against FakeProvider (position bias cancelled)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from tierroute import RouterConfig
from tierroute.bench.runner import BenchOptions, _limits, run_bench
from tierroute.bench.samples import Sample, load_samples
from tierroute.bench.scorers import parse_rating, parse_verdict, score_answer
from tierroute.errors import ConfigError
from tierroute.testing import FakeProvider, ModelScript


def s(**kw: Any) -> Sample:
    return Sample(task_type="t", prompt=kw.pop("prompt", "q?"), **kw)


def score(answer: str, sample: Sample) -> float:
    return asyncio.run(score_answer(answer, sample))


def test_builtin_scorers() -> None:
    assert score(" Paris \n", s(reference="Paris", scorer="exact")) == 1.0
    assert score("paris", s(reference="Paris", scorer="exact")) == 0.0
    assert score("paris", s(reference="Paris", scorer={"name": "exact", "case_sensitive": False})) == 1.0
    assert score("It is PARIS, of course.", s(reference="paris", scorer="contains")) == 1.0
    assert score("Parisian food", s(reference="paris", scorer="contains")) == 0.0  # whole words only
    assert score("Lyon", s(reference=["Paris", "Lyon"], scorer="contains")) == 1.0
    assert score("ID: AB-1234", s(scorer={"name": "regex", "pattern": r"[A-Z]{2}-\d{4}"})) == 1.0
    assert score("id: ab-1234", s(scorer={"name": "regex", "pattern": r"[A-Z]{2}-\d{4}"})) == 0.0
    assert score("id: ab-1234", s(scorer={"name": "regex", "pattern": r"[A-Z]{2}-\d{4}", "flags": "i"})) == 1.0
    assert score("First 12, then the total is $1,234.50", s(reference=1234.5, scorer="numeric")) == 1.0
    assert score("The answer is 3/4", s(reference="0.75", scorer="numeric")) == 1.0
    assert score("about 41", s(reference=42, scorer="numeric")) == 0.0
    assert score("no number", s(reference=42, scorer="numeric")) == 0.0
    assert score('```json\n{"a": 1}\n```', s(scorer="json")) == 1.0
    assert score("{'a': 1}", s(scorer="json")) == 0.0
    schema = {"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}}
    assert score('{"a": 1}', s(scorer={"name": "json_schema", "schema": schema})) == 1.0
    assert score('{"a": "x"}', s(scorer={"name": "json_schema", "schema": schema})) == 0.0
    rouge = score("the cat sat on a mat", s(reference="the cat sat on the mat", scorer="rouge_l"))
    assert 0.8 < rouge < 1.0


def test_custom_scorer_and_bad_scorers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_scorers.py").write_text(
        "async def shouty(answer, sample):\n    return answer.isupper()\n\ndef half(answer, sample):\n    return 0.5\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert score("YES", s(scorer="my_scorers:shouty")) == 1.0
    assert score("yes", s(scorer="my_scorers:shouty")) == 0.0
    assert score("x", s(scorer="my_scorers:half")) == 0.5
    with pytest.raises(ConfigError, match="cannot import scorer"):
        score("x", s(scorer="my_scorers:missing"))
    with pytest.raises(ConfigError, match="unknown scorer 'bleu'"):
        score("x", s(scorer="bleu"))
    with pytest.raises(ConfigError, match="no judge model"):
        score("x", s(scorer="judge"))


def test_judge_replies_are_parsed_robustly() -> None:
    assert parse_rating("Good. [[8]]") == 8
    assert parse_rating('{"score": 7, "why": "ok"}') == 7
    assert parse_rating("Rating: **6**") == 6
    assert parse_rating("I'd say 9/10.") == 9
    assert parse_rating("7 out of 10") == 7
    assert parse_rating("3") == 3
    assert parse_rating("There were 42 steps. [[11]]") is None
    assert parse_verdict("A is clearer. [[A]]") == "A"
    assert parse_verdict("[[C]]") == "tie"
    assert parse_verdict("Verdict: B") == "B"
    assert parse_verdict("hard to say") is None


def test_sample_files_and_their_errors(tmp_path: Path) -> None:
    good = tmp_path / "s.yaml"
    good.write_text(
        yaml.safe_dump(
            {
                "defaults": {"task_type": "math", "scorer": "numeric"},
                "samples": [
                    {"prompt": "1+1?", "reference": 2},
                    {"id": "x", "messages": [{"role": "user", "content": "2+2?"}], "reference": 4},
                ],
            }
        )
    )
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text('{"task_type": "qa", "prompt": "Capital of Peru?", "reference": "Lima", "scorer": "contains"}\n')
    got = load_samples([good, jsonl])
    assert [x.id for x in got] == ["math-1", "x", "qa-1"]
    assert got[1].text == "2+2?" and got[0].chat == [{"role": "user", "content": "1+1?"}]
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump([{"prompt": "no task"}, {"task_type": "t"}, {"task_type": "t", "prompt": "p", "colour": 1}])
    )
    with pytest.raises(ConfigError) as ei:
        load_samples(bad)
    paths = [p.path for p in ei.value.problems]
    assert any(p.startswith(f"{bad}[0].task_type") for p in paths)
    assert any(p.startswith(f"{bad}[1]") and "exactly one of" in m.message for p, m in zip(paths, ei.value.problems))
    assert any(p.startswith(f"{bad}[2].colour") for p in paths)


def _judge_reply(body: dict[str, Any]) -> str:
    """A judge that knows the capitals; it states its verdict for the positions it saw."""
    text = body["messages"][-1]["content"]
    city = "Paris" if "France" in text else "Rome"
    if "[Answer A]" in text:
        a = text.split("[Answer A]")[1].split("[Answer B]")[0]
        b = text.split("[Answer B]")[1]
        if (city in a) == (city in b):
            return "Both equal. [[C]]"
        return "A is right. [[A]]" if city in a else "B is right. [[B]]"
    answer = text.split("[Answer]")[1]
    return "Correct and complete. [[10]]" if city in answer else "Wrong. [[1]]"


def _config(fp: FakeProvider) -> RouterConfig:
    return RouterConfig.from_dict(
        {
            "model_list": [
                {"model_name": "cheap", "tpm": 100000, "rpm": 500,
                 "litellm_params": {"model": "openai/cheap", "api_base": fp.base_url, "api_key": "sk-fake-key-000"}},
                {"model_name": "cheap", "tpm": 50000, "rpm": 100,
                 "litellm_params": {"model": "openai/cheap", "api_base": fp.base_url, "api_key": "sk-fake-key-000"}},
                {"model_name": "judge",
                 "litellm_params": {"model": "openai/judge", "api_base": fp.base_url, "api_key": "sk-fake-key-000"}},
            ],
            "tiers": ["cheap", "judge"],
        }
    )  # fmt: skip


def test_llm_judge_through_litellm_with_both_orders(tmp_path: Path) -> None:
    scripts = {
        "cheap": ModelScript(replies={"Capital of France?": "Paris", "Capital of Italy?": "Paris"}),
        "judge": ModelScript(reply=_judge_reply),
    }
    with FakeProvider(scripts) as fp:
        config = _config(fp)
        assert _limits(config, "cheap") == (600, 150000) and _limits(config, "judge") == (None, None)
        samples = [
            Sample(id="fr", task_type="geo", prompt="Capital of France?", reference="Paris is the capital.",
                   scorer={"name": "judge", "mode": "pairwise"}),
            Sample(id="it", task_type="geo", prompt="Capital of Italy?", reference="Rome is the capital.",
                   scorer={"name": "judge", "mode": "pairwise"}),
            Sample(id="fr-rubric", task_type="geo", prompt="Capital of France?", reference="Paris", scorer="judge"),
        ]  # fmt: skip
        with pytest.raises(ConfigError, match="no judge model is set"):  # caught before any call is paid for
            asyncio.run(
                run_bench(config, samples, tmp_path / "nojudge", BenchOptions(models=["cheap"], progress=False))
            )
        assert fp.requests == []
        opts = BenchOptions(models=["cheap"], judge="judge", progress=False)
        run = asyncio.run(run_bench(config, samples, tmp_path, opts))
        scores = {r.id: r.scores["cheap"] for r in run.rows}
        assert scores == {"fr": 0.5, "it": 0.0, "fr-rubric": 1.0}  # tie, loss in both orders, rubric 10 -> 1.0
        judged = [r.body["messages"][-1]["content"] for r in fp.requests_for("judge")]
        pairwise = [t for t in judged if "[Answer A]" in t]
        assert len(pairwise) == 4  # each pairwise answer judged twice, with A and B swapped
        firsts = [t.split("[Answer A]")[1].split("[Answer B]")[0].strip() for t in pairwise]
        assert sorted(firsts) == sorted(["Paris", "Paris is the capital.", "Paris", "Rome is the capital."])
        # a position-biased judge (always "A") cannot move the score: the swap cancels it
        fp.set_script("judge", ModelScript(reply="A looks better. [[A]]"))
        biased = asyncio.run(run_bench(config, samples[1:2], tmp_path / "biased", opts))
        assert biased.rows[0].scores["cheap"] == 0.5
