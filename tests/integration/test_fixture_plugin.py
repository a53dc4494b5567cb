from __future__ import annotations

import httpx
from tierroute.testing import FakeProvider, ModelScript


def test_fake_provider_fixture_serves_scripts(fake_provider: FakeProvider) -> None:
    fake_provider.set_script("m", ModelScript(reply="from the fixture"))
    r = httpx.post(
        f"{fake_provider.base_url}/chat/completions",
        json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
    )
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"] == "from the fixture"
    assert len(fake_provider.requests_for("m")) == 1
