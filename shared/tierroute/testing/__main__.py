"""Run the fake provider in the foreground: ``python -m tierroute.testing --port N --script FILE``.

The first line on stdout is the OpenAI base URL (``http://127.0.0.1:N/v1``); the server runs until
SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from tierroute.errors import ConfigError
from tierroute.testing._script import ModelScript
from tierroute.testing._server import FakeProvider

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tierroute.testing",
        description="OpenAI-compatible fake LLM provider with scripted replies and injected faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: 0 = a free port)")
    parser.add_argument("--script", help="YAML or JSON file: {models: {NAME: {reply: ..., faults: [...]}}}")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="add an echo model (repeatable); used alone when no --script is given",
    )
    parser.add_argument("--log", action="store_true", help="log every request to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the server, print its base URL and serve until interrupted.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit code: 0 after a clean stop, 2 for a bad script file.
    """
    args = _parser().parse_args(argv)
    try:
        if args.script:
            provider = FakeProvider.from_script_file(args.script, host=args.host, port=args.port)
        else:
            provider = FakeProvider(host=args.host, port=args.port)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name in args.model:
        provider.set_script(name, ModelScript())
    if not provider.model_names():
        provider.set_script("fake-model", ModelScript())
    provider.log = args.log
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with provider:
        print(provider.base_url, flush=True)
        print(f"models: {', '.join(provider.model_names())}", file=sys.stderr, flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
