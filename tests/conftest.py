from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before anything imports litellm or transformers: no price-map download, no hub access.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TIERROUTE_CACHE_DIR", tempfile.mkdtemp(prefix="tierroute-test-cache-"))

pytest_plugins = ["tierroute.testing.pytest_plugin"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "examples" / "tierroute.yaml"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def example_config_path() -> Path:
    return EXAMPLE_CONFIG


@pytest.fixture(scope="session")
def example_router():  # type: ignore[no-untyped-def]
    from tierroute import TierRouter

    return TierRouter.from_yaml(EXAMPLE_CONFIG)
