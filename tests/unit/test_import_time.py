from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "litellm",
    "semantic_router",
    "torch",
    "langchain_core",
    "llama_index",
    "sentence_transformers",
    "numpy",
    "transformers",
)


def test_import_tierroute_loads_no_heavy_package() -> None:
    code = "import sys, json, tierroute; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not [m for m in HEAVY if m in loaded]


def test_deciding_with_rules_only_loads_no_heavy_package() -> None:
    code = (
        "import sys, json\n"
        "from tierroute import TierRouter, RouterConfig\n"
        "cfg = RouterConfig.from_dict({'model_list': [{'model_name': 'a', 'litellm_params': {'model': 'openai/x'}}],"
        " 'tiers': ['a'], 'routing': {'rules': [{'name': 'r', 'tier': 'a', 'keywords': ['hi']}]}})\n"
        "assert TierRouter(cfg).decide('hi').tier == 'a'\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert not [m for m in HEAVY if m in loaded]
