from __future__ import annotations

import time
from typing import Any

import pytest
from tierroute import InvalidRequestError, RouterConfig, RouteRequest
from tierroute.policies.rules import RulesPolicy
from tierroute.tokens import count_tokens

MODEL_LIST = [{"model_name": t, "litellm_params": {"model": f"openai/{t}"}} for t in ("budget", "mid", "premium")]


def policy(rules: list[dict[str, Any]], **routing: Any) -> RulesPolicy:
    cfg = RouterConfig.from_dict(
        {"model_list": MODEL_LIST, "tiers": ["budget", "mid", "premium"], "routing": {"rules": rules, **routing}}
    )
    return RulesPolicy(cfg.routing)


def decide(p: RulesPolicy, messages: Any, **kw: Any) -> tuple[str | None, str]:
    v = p.decide(RouteRequest.from_messages(messages, **kw))
    return v.tier, v.reason


def test_keywords_whole_word_case_insensitive() -> None:
    p = policy([{"name": "sum", "tier": "budget", "keywords": ["summarize", "bullet points"]}])
    assert decide(p, "Please SUMMARIZE the memo")[0] == "budget"
    assert decide(p, "as bullet   points")[0] == "budget"
    assert decide(p, "summarized yesterday")[0] is None  # not a whole word
    assert decide(p, "presummarize")[0] is None


def test_reason_names_rule_and_match() -> None:
    p = policy([{"name": "code", "tier": "mid", "regex": r"\b(debug|refactor)\b"}])
    tier, reason = decide(p, "Can you refactor this?")
    assert tier == "mid"
    assert reason == "rule 'code': regex matched 'refactor'"


def test_first_match_wins() -> None:
    p = policy(
        [
            {"name": "first", "tier": "premium", "keywords": ["proof"]},
            {"name": "second", "tier": "budget", "keywords": ["proof"]},
        ]
    )
    tier, reason = decide(p, "a proof please")
    assert (tier, reason.split(":")[0]) == ("premium", "rule 'first'")


def test_all_conditions_must_hold() -> None:
    p = policy([{"name": "both", "tier": "premium", "keywords": ["contract"], "task_types": ["legal"]}])
    assert decide(p, "review this contract")[0] is None
    assert decide(p, "review this contract", metadata={"task_type": "legal"})[0] == "premium"
    assert decide(p, "hello", metadata={"task_type": "legal"})[0] is None


def test_task_type_tags_and_metadata() -> None:
    p = policy(
        [
            {"name": "tt", "tier": "budget", "task_types": ["summarization"]},
            {"name": "tag", "tier": "premium", "tags": ["vip"]},
            {"name": "meta", "tier": "mid", "metadata": {"team": ["search", "ads"]}},
        ]
    )
    assert decide(p, "x", metadata={"task_type": "summarization"}) == ("budget", "rule 'tt': task_type='summarization'")
    assert decide(p, "x", metadata={"tags": ["a", "vip"]})[0] == "premium"
    assert decide(p, "x", metadata={"team": "ads"})[0] == "mid"
    assert decide(p, "x", metadata={"team": "infra"})[0] is None


def test_token_thresholds_use_a_real_tokenizer() -> None:
    # 400 characters of digits: len/4 would say 100 tokens; cl100k says otherwise.
    text = "1234567890" * 40
    real = count_tokens(text)
    assert real != len(text) // 4
    p = policy([{"name": "big", "tier": "premium", "min_tokens": real}])
    assert decide(p, text)[0] == "premium"
    p2 = policy([{"name": "big", "tier": "premium", "min_tokens": real + 1}])
    assert decide(p2, text)[0] is None
    p3 = policy([{"name": "small", "tier": "budget", "max_tokens": 3}])
    assert decide(p3, "hi there")[0] == "budget"
    assert decide(p3, "one two three four five six")[0] is None


def test_tools_and_images() -> None:
    p = policy([{"name": "img", "tier": "premium", "images": True}, {"name": "tools", "tier": "mid", "tools": True}])
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    img = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    assert decide(p, [{"role": "user", "content": img}])[0] == "premium"
    assert decide(p, "weather?", tools=[tool])[0] == "mid"
    assert decide(p, "weather?")[0] is None


def test_scope_last_user_vs_all() -> None:
    msgs = [
        {"role": "system", "content": "You summarize documents."},
        {"role": "user", "content": "first doc"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "and this one"},
    ]
    assert decide(policy([{"name": "s", "tier": "budget", "keywords": ["summarize"]}]), msgs)[0] is None
    assert (
        decide(policy([{"name": "s", "tier": "budget", "keywords": ["summarize"]}], scope="all"), msgs)[0] == "budget"
    )
    assert (
        decide(policy([{"name": "s", "tier": "budget", "keywords": ["summarize"], "scope": "all"}]), msgs)[0]
        == "budget"
    )


def test_override_only_when_allow_listed() -> None:
    p = policy([{"name": "s", "tier": "budget", "keywords": ["x"]}], override={"allow": ["premium"]})
    ok = p.check_override(RouteRequest.from_messages("x", metadata={"tier": "premium"}))
    assert ok is not None and ok.tier == "premium"
    denied = p.check_override(RouteRequest.from_messages("x", metadata={"tier": "mid"}))
    assert denied is not None and denied.tier is None and "ignored" in denied.reason
    assert p.check_override(RouteRequest.from_messages("x")) is None
    no_override = policy([{"name": "s", "tier": "budget", "keywords": ["x"]}])
    assert no_override.check_override(RouteRequest.from_messages("x", metadata={"tier": "premium"})) is None


def test_override_wins_over_rules_in_chain(example_router: Any) -> None:
    d = example_router.decide("tl;dr please", metadata={"tier": "premium"})
    assert (d.tier, d.layer) == ("premium", "override")
    d = example_router.decide("tl;dr please", metadata={"tier": "mid"})  # not allow-listed
    assert (d.tier, d.layer) == ("budget", "rules")


def test_one_megabyte_prompt_gets_a_decision_quickly() -> None:
    big = ("lorem ipsum dolor sit amet " * 40000)[:1_000_000]
    p = policy(
        [
            {"name": "code", "tier": "mid", "regex": r"\b(code|debug)\b"},
            {"name": "huge", "tier": "premium", "min_tokens": 60000},
        ]
    )
    t = time.perf_counter()
    tier, reason = decide(p, big)
    elapsed = time.perf_counter() - t
    assert tier == "premium" and "at least 60000 tokens" in reason
    assert elapsed < 30  # a sanity bound against pathological behaviour, not a speed target


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([], "messages is empty"),
        (["hello"], "messages[0] is a str"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role is 'wizard'"),
        ([{"content": "x"}], "messages[0].role is None"),
        ([{"role": "user", "content": 42}], "messages[0].content is a int"),
        ([{"role": "user", "content": [42]}], "messages[0].content[0] is a int"),
    ],
)
def test_bad_messages_raise_typed_error(messages: Any, needle: str) -> None:
    with pytest.raises(InvalidRequestError) as ei:
        RouteRequest.from_messages(messages)
    assert needle in str(ei.value)
    assert isinstance(ei.value, ValueError)


def test_no_user_turn_gets_defined_text() -> None:
    r = RouteRequest.from_messages([{"role": "system", "content": "Summarize the following."}])
    assert r.text("last_user") == "Summarize the following."
    assert policy([{"name": "s", "tier": "budget", "keywords": ["summarize"]}]).decide(r).tier == "budget"


def test_non_string_parts_contribute_no_text() -> None:
    r = RouteRequest.from_messages(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "1", "content": [{"type": "tool_result", "content": "42"}]},
        ]
    )
    assert r.has_images
    assert r.texts == ("look", "", "")
    assert r.text("last_user") == "look"


def test_lone_surrogates_are_replaced() -> None:
    r = RouteRequest.from_messages("bad \ud800 text summarize")
    assert "\ud800" not in r.text()
    r.text().encode("utf-8")
    assert policy([{"name": "s", "tier": "budget", "keywords": ["summarize"]}]).decide(r).tier == "budget"
