"""Serve the emulator on a fixture: ``python -m gatherly.linkedin_emulator --fixture F --port N``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gatherly.linkedin_emulator import (
    FixtureError,
    LinkedInState,
    create_linkedin_app,
    load_fixture,
)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, load the fixture and serve until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m gatherly.linkedin_emulator",
        description="Serve the bundled LinkedIn emulator (OAuth, /rest Lead Sync, /_emulator).",
    )
    parser.add_argument("--fixture", type=Path, default=Path("examples/linkedin-sample.json"))
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    try:
        state = LinkedInState(load_fixture(args.fixture))
    except FixtureError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    import uvicorn

    base = f"http://{args.host}:{args.port}"
    print(f"LinkedIn emulator on {base}")
    print(f"  authorize: {base}/oauth/v2/authorization   token: {base}/oauth/v2/accessToken")
    print(f"  REST: {base}/rest   control: {base}/_emulator/")
    uvicorn.run(create_linkedin_app(state), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
