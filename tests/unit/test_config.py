from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr
from tierroute import ConfigError, RouterConfig

BASE: dict[str, Any] = {
    "model_list": [
        {
            "model_name": "budget",
            "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": "os.environ/TR_TEST_KEY"},
        },
        {"model_name": "mid", "litellm_params": {"model": "openai/gpt-4o"}, "rpm": 100},
        {"model_name": "premium", "litellm_params": {"model": "anthropic/claude-opus-4-7"}, "model_info": {"id": "p1"}},
    ],
    "tiers": ["budget", "mid", "premium"],
    "default_tier": "mid",
}


def cfg(**over: Any) -> dict[str, Any]:
    d = yaml.safe_load(yaml.safe_dump(BASE))
    d.update(over)
    return d


def problems(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as ei:
        RouterConfig.from_dict(data)
    return [(p.path, p.message) for p in ei.value.problems]


def test_example_config_loads(example_config_path: Path) -> None:
    c = RouterConfig.from_yaml(example_config_path)
    assert c.tiers == ["budget", "mid", "premium"]
    assert c.default_tier == "mid"
    assert [d.model_name for d in c.model_list] == ["budget", "mid", "premium"]
    assert c.routing.semantic is not None and set(c.routing.semantic.routes) == {"budget", "mid", "premium"}


def test_default_tier_defaults_to_most_capable() -> None:
    d = cfg()
    del d["default_tier"]
    assert RouterConfig.from_dict(d).default_tier == "premium"


def test_unknown_tier_in_rule_and_fallback_named_with_path() -> None:
    got = problems(
        cfg(
            routing={
                "rules": [
                    {"name": "a", "tier": "budget", "keywords": ["x"]},
                    {"name": "b", "tier": "gold", "keywords": ["y"]},
                ]
            },
            cascade={"fallbacks": {"budget": ["platinum"]}},
        )
    )
    assert ("routing.rules[1].tier", "unknown tier 'gold'") in got
    assert ("cascade.fallbacks.budget[0]", "unknown tier 'platinum'") in got


def test_tier_without_deployment() -> None:
    d = cfg(tiers=["budget", "mid", "premium", "ultra"])
    got = problems(d)
    assert ("tiers[3]", "tier 'ultra' has no deployment") in got
    # a tier served by an object passed in code needs no deployment
    assert RouterConfig.from_dict(d, external_tiers={"ultra"}).tiers[-1] == "ultra"


def test_fallback_cycle() -> None:
    got = problems(cfg(cascade={"fallbacks": {"budget": ["mid"], "mid": ["premium"], "premium": ["budget"]}}))
    assert got == [("cascade.fallbacks", "fallback cycle: budget -> mid -> premium -> budget")]


def test_bad_regex_shows_pattern_and_path() -> None:
    with pytest.raises(ConfigError) as ei:
        RouterConfig.from_dict(cfg(routing={"rules": [{"name": "a", "tier": "mid", "regex": "(unclosed"}]}))
    assert ei.value.path == "routing.rules[0].regex"
    assert "'(unclosed'" in str(ei.value)


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w+\s?)*$", r"(?:x*)*y", r"((ab)*c)+"])
def test_catastrophic_regex_rejected(pattern: str) -> None:
    with pytest.raises(ConfigError) as ei:
        RouterConfig.from_dict(cfg(routing={"rules": [{"name": "a", "tier": "mid", "regex": pattern}]}))
    assert ei.value.path == "routing.rules[0].regex"
    assert "nests unbounded quantifiers" in str(ei.value)


@pytest.mark.parametrize(
    ("section", "path"),
    [
        ({"semantic": {"threshold": 1.5, "routes": {"budget": ["hi"]}}}, "routing.semantic.threshold"),
        ({"semantic": {"threshold": -0.1, "routes": {"budget": ["hi"]}}}, "routing.semantic.threshold"),
        ({"semantic": {"thresholds": {"budget": 2}, "routes": {"budget": ["hi"]}}}, "routing.semantic.thresholds"),
    ],
)
def test_thresholds_out_of_range(section: dict[str, Any], path: str) -> None:
    assert [p for p, _ in problems(cfg(routing=section))] == [path]


def test_unknown_keys_in_own_sections_rejected() -> None:
    got = problems(
        cfg(
            routing={"rules": [{"name": "a", "tier": "mid", "keyword": ["x"]}], "semantik": {}},
            cascade={"retry": {}},
            routng={},
        )
    )
    paths = {p for p, _ in got}
    assert {"routing.rules[0].keyword", "routing.semantik", "cascade.retry", "routng"} <= paths


def test_litellm_sections_and_params_pass_through() -> None:
    d = cfg(
        router_settings={"routing_strategy": "usage-based-routing-v2", "anything": 1},
        litellm_settings={"drop_params": True},
    )
    d["model_list"][0]["litellm_params"]["custom_llm_provider"] = "openai"
    d["model_list"][0]["litellm_params"]["timeout"] = 7
    c = RouterConfig.from_dict(d)
    assert c.router_settings == {"routing_strategy": "usage-based-routing-v2", "anything": 1}
    assert c.litellm_settings == {"drop_params": True}
    ml = c.model_list
    assert ml[1].model_extra == {"rpm": 100}
    assert ml[2].model_info == {"id": "p1"}


def test_secrets_are_secretstr_and_resolved_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TR_TEST_KEY", "sk-very-secret-123")
    d = cfg()
    d["model_list"][1]["litellm_params"]["api_key"] = "sk-inline-456"
    d["model_list"][1]["litellm_params"]["aws_secret_access_key"] = "aws-secret-789"
    c = RouterConfig.from_dict(d)
    p0, p1 = c.model_list[0].litellm_params, c.model_list[1].litellm_params
    assert isinstance(p0.api_key, SecretStr) and isinstance(p1.api_key, SecretStr)
    text = repr(c) + str(c) + c.model_dump_json()
    for secret in ("sk-very-secret-123", "sk-inline-456", "aws-secret-789"):
        assert secret not in text
    plain = c.litellm_model_list()
    assert plain[0]["litellm_params"]["api_key"] == "sk-very-secret-123"
    assert plain[1]["litellm_params"]["aws_secret_access_key"] == "aws-secret-789"
    assert plain[1]["rpm"] == 100


def test_missing_env_secret_is_a_warning_then_an_error_on_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TR_TEST_KEY", raising=False)
    c = RouterConfig.from_dict(cfg())
    assert c.warnings() == ["model_list[0].litellm_params: environment variable TR_TEST_KEY is not set"]
    with pytest.raises(ConfigError, match="TR_TEST_KEY is not set"):
        c.litellm_model_list()


def test_rule_without_condition() -> None:
    got = problems(cfg(routing={"rules": [{"name": "empty", "tier": "mid"}]}))
    assert got[0][0] == "routing.rules[0]"
    assert "has no condition" in got[0][1]


def test_every_problem_reported_at_once() -> None:
    got = problems(
        cfg(
            routing={
                "rules": [
                    {"name": "a", "tier": "mid", "regex": "("},
                    {"name": "b", "tier": "mid", "keywords": ["x"], "bogus": 1},
                ],
                "semantic": {"threshold": 3, "routes": {"budget": ["x"]}},
            }
        )
    )
    assert len(got) == 3


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("tiers: [a, b\n  - c", "not valid YAML at line"),
        ("", "is empty"),
        ("- just\n- a list\n", "must be a mapping"),
        ("just a string", "must be a mapping"),
    ],
)
def test_not_yaml_or_wrong_shape(text: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RouterConfig.from_yaml_text(text)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        RouterConfig.from_yaml(tmp_path / "nope.yaml")


def test_binary_file(tmp_path: Path) -> None:
    p = tmp_path / "bin.yaml"
    p.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ConfigError, match="cannot read config file"):
        RouterConfig.from_yaml(p)


def test_redis_state_needs_url() -> None:
    assert problems(cfg(state={"backend": "redis"}))[0][0] == "state"


def test_on_content_policy_must_be_stop_or_tier() -> None:
    assert problems(cfg(cascade={"on_content_policy": "escalate"}))[0][0] == "cascade.on_content_policy"
    assert RouterConfig.from_dict(cfg(cascade={"on_content_policy": "premium"})).cascade.on_content_policy == "premium"


def test_config_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        RouterConfig.from_yaml_text(textwrap.dedent("tiers: []\n"))
