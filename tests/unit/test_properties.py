"""Property tests: the config loader and the rules layer never fail with anything but their typed errors."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tierroute import ConfigError, InvalidRequestError, RouterConfig, RouteRequest
from tierroute.policies.rules import RulesPolicy

TIERS = ["budget", "mid", "premium"]
MODEL_LIST = [{"model_name": t, "litellm_params": {"model": f"openai/{t}"}} for t in TIERS]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 100_000), st.floats(allow_nan=True), st.text(max_size=12))
tier_like = st.sampled_from([*TIERS, "gold", ""])
json_like = st.recursive(
    scalars,
    lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)),
    max_leaves=8,
)
regexish = st.text(alphabet=string.ascii_letters + "()[]{}*+?|\\.^$", max_size=12)

rule = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=6), "tier": tier_like},
    optional={
        "keywords": st.lists(st.text(max_size=8), max_size=3),
        "regex": regexish,
        "task_types": st.lists(st.text(max_size=6), max_size=2),
        "min_tokens": st.integers(-2, 50),
        "max_tokens": st.integers(-2, 50),
        "tools": st.booleans(),
        "images": st.booleans(),
        "scope": st.sampled_from(["last_user", "all", "middle"]),
        "junk": json_like,
    },
)

config = st.fixed_dictionaries(
    {
        "tiers": st.one_of(st.just(TIERS), st.lists(tier_like, max_size=4)),
        "model_list": st.one_of(st.just(MODEL_LIST), json_like),
    },
    optional={
        "default_tier": tier_like,
        "routing": st.fixed_dictionaries(
            {}, optional={"rules": st.lists(rule, max_size=3), "scope": st.text(max_size=5), "extra": json_like}
        ),
        "cascade": st.fixed_dictionaries(
            {},
            optional={
                "fallbacks": st.dictionaries(tier_like, st.lists(tier_like, max_size=2), max_size=3),
                "max_escalations": st.integers(-3, 20),
                "on_content_policy": tier_like,
            },
        ),
        "state": json_like,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config)
def test_config_loader_only_raises_config_error(data: dict[str, Any]) -> None:
    try:
        c = RouterConfig.from_dict(data)
    except ConfigError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.message
        return
    # a config that loads is internally consistent
    assert c.default_tier in c.tiers
    assert all(r.tier in c.tiers for r in c.routing.rules)
    assert all(t in c.tiers for src, dsts in c.cascade.fallbacks.items() for t in [src, *dsts])


VALID_RULES = RouterConfig.from_dict(
    {
        "model_list": MODEL_LIST,
        "tiers": TIERS,
        "routing": {
            "override": {"allow": ["premium"]},
            "rules": [
                {"name": "k", "tier": "budget", "keywords": ["summarize", "tl;dr", "c++"]},
                {"name": "r", "tier": "mid", "regex": r"\b(code|debug)\b"},
                {"name": "t", "tier": "premium", "task_types": ["proof"]},
                {"name": "n", "tier": "premium", "min_tokens": 40},
                {"name": "m", "tier": "budget", "max_tokens": 2, "tools": False},
            ],
        },
    }
)
RULES = RulesPolicy(VALID_RULES.routing)

content = st.one_of(
    st.text(max_size=300),
    st.none(),
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=50)}),
            st.fixed_dictionaries({"type": st.sampled_from(["image_url", "input_audio", "tool_result"])}),
            st.text(max_size=10),
            st.integers(),
        ),
        max_size=3,
    ),
    st.integers(),
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "bogus"]), "content": content}
)
metadata = st.dictionaries(
    st.sampled_from(["task_type", "tier", "tags", "x"]),
    st.one_of(st.text(max_size=8), st.lists(st.text(max_size=5), max_size=2)),
    max_size=3,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(message, max_size=4), metadata)
def test_rules_layer_gives_a_verdict_or_a_typed_error(messages: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    try:
        req = RouteRequest.from_messages(messages, metadata=meta)
    except InvalidRequestError:
        return
    v = RULES.decide(req)
    assert v.tier is None or v.tier in TIERS
    assert v.reason
    o = RULES.check_override(req)
    assert o is None or o.tier in (None, "premium")
