"""Test doubles for tierroute: :class:`FakeProvider`, an OpenAI-compatible HTTP server with scripted faults.

Point LiteLLM (or any OpenAI client) at :attr:`FakeProvider.base_url` and script each model's replies,
latency, token usage and failures::

    from tierroute.testing import Fault, FakeProvider, ModelScript

    scripts = {
        "budget": ModelScript(reply="short answer", faults=[Fault("rate_limit", every=3)]),
        "premium": ModelScript(reply="echo", served_model="premium-2025-01-01"),
    }
    with FakeProvider(models=scripts) as fp:
        litellm.completion(model="openai/budget", api_base=fp.base_url, api_key="sk-fake", messages=[...])

The same server runs from the command line: ``python -m tierroute.testing --port 8123 --script script.yaml``.
This package imports only the standard library (and tierroute's own error types); PyYAML loads on demand.
"""

from __future__ import annotations

from tierroute.testing._script import FAULT_KINDS, Fault, FaultKind, ModelScript, ReplyFn
from tierroute.testing._server import FakeProvider, RecordedRequest

__all__ = [
    "FAULT_KINDS",
    "FakeProvider",
    "Fault",
    "FaultKind",
    "ModelScript",
    "RecordedRequest",
    "ReplyFn",
]
