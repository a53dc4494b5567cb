"""pytest fixtures for FakeProvider.

Enable with ``pytest_plugins = ["tierroute.testing.pytest_plugin"]`` in a ``conftest.py``, then::

    def test_fallback(fake_provider):
        fake_provider.set_script("budget", ModelScript(faults=[Fault("server_error")]))
        ...

``fake_provider`` is a running :class:`~tierroute.testing.FakeProvider` (no models scripted; add them
with ``set_script``), stopped after the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tierroute.testing._server import FakeProvider

__all__ = ["fake_provider"]


@pytest.fixture()
def fake_provider() -> Iterator[FakeProvider]:
    """A running FakeProvider on a free port of 127.0.0.1, stopped after the test."""
    with FakeProvider() as provider:
        yield provider
