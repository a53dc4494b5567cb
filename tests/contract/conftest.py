from __future__ import annotations

from collections.abc import Iterator

import pytest
from tierroute.testing import FakeProvider, ModelScript

from .llm_contract import FAKE_MODEL


@pytest.fixture()
def fake() -> Iterator[FakeProvider]:
    scripts = {FAKE_MODEL: ModelScript(reply="echo"), "premium-model": ModelScript(reply="premium answer")}
    with FakeProvider(scripts) as provider:
        yield provider
