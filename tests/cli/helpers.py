"""Helpers for the CLI suite: each test gets its own SQLite file under ``tmp_path``.

In-process runs go through ``typer.testing.CliRunner`` against ``gatherly.cli.app``; error
handling lives in ``gatherly.cli.main`` (the console script), so those tests run the real
``gatherly`` executable in a subprocess.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner, Result

from gatherly.cli import app, main
from gatherly.core.db import make_engine

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TOKEN = re.compile(r"gly_[A-Za-z0-9_-]+")
# Environment variables that would make rich colour or resize the output.
_TERMINAL_VARS = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


def plain(text: str) -> str:
    """``text`` without ANSI escapes (in case the environment forces colour)."""
    return ANSI.sub("", text)


def sqlite_url(path: Path) -> str:
    """A SQLAlchemy URL for a SQLite file."""
    return f"sqlite:///{path}"


def gatherly_executable() -> str:
    """The installed ``gatherly`` console script (next to this interpreter, or on PATH)."""
    beside = Path(sys.executable).parent / "gatherly"
    if beside.exists():
        return str(beside)
    found = shutil.which("gatherly")
    if found is None:
        pytest.fail("the gatherly console script is not installed")
    return found


def subprocess_env(database_url: str) -> dict[str, str]:
    """The current environment, pointed at ``database_url``, with a plain 80-column terminal."""
    env = {k: v for k, v in os.environ.items() if k not in _TERMINAL_VARS}
    env["GATHERLY_DATABASE_URL"] = database_url
    # `serve` embeds a worker: its queue goes beside the test's files, not into ./var.
    env["GATHERLY_QUEUE_PATH"] = str(
        Path(tempfile.gettempdir()) / f"gatherly-queue-{os.getpid()}.db"
    )
    env["COLUMNS"] = "80"  # the default width of a non-terminal; long lines must not wrap
    env["NO_COLOR"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def run_script(
    database_url: str,
    *args: str,
    env: dict[str, str | None] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``gatherly ARGS`` through the console script's entry point, ``gatherly.cli.main``
    (its one-line errors and exit codes), in this process: the same code as the installed
    script without an interpreter start-up per call. ``run_console_script`` starts the real
    executable, for the tests that prove the installed script itself."""
    runner = CliRunner()
    environ: dict[str, str | None] = {k: None for k in _TERMINAL_VARS}
    environ.update(subprocess_env(database_url))
    environ.update(env or {})
    saved_argv = sys.argv
    with runner.isolation(input=stdin, env=environ) as (stdout, stderr, _output):
        sys.argv = ["gatherly", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved_argv
            sys.stdout.flush()  # text written but still buffered by the wrapper
            sys.stderr.flush()
        out, err = stdout.getvalue().decode(), stderr.getvalue().decode()
    return subprocess.CompletedProcess(["gatherly", *args], code, out, err)


def run_console_script(
    database_url: str,
    *args: str,
    env: dict[str, str | None] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run the real, installed ``gatherly`` console script in a process of its own."""
    environ = subprocess_env(database_url)
    for key, value in (env or {}).items():
        if value is None:
            environ.pop(key, None)
        else:
            environ[key] = value
    return subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [gatherly_executable(), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


CliRun = Callable[..., Result]


def make_cli(database_url: str) -> CliRun:
    """A function running ``gatherly ARGS`` in-process on ``database_url``; checks exit 0."""
    runner = CliRunner()
    env: dict[str, str | None] = {k: None for k in _TERMINAL_VARS}
    env["GATHERLY_DATABASE_URL"] = database_url
    # The emulator on loopback takes far more than Graph's 25 requests a second.
    env["GATHERLY_GRAPH_RATE_PER_SECOND"] = "500"

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(app, list(args), env=env)
        if ok:
            assert result.exit_code == 0, (
                f"gatherly {' '.join(args)} exited {result.exit_code}: {result.output}"
                f"{result.exception!r}"
            )
        return result

    return run


@dataclass(frozen=True)
class DemoOutput:
    """What ``gatherly demo --no-serve`` printed: a token per user and the curl lines."""

    tokens: dict[str, str]
    curl_lines: list[str]
    text: str


def parse_demo(output: str) -> DemoOutput:
    """Read the table rows (``user │ role │ BU │ token``) and curl lines of the demo banner."""
    text = plain(output)
    tokens: dict[str, str] = {}
    curl_lines = []
    for line in text.splitlines():
        if line.strip().startswith("curl "):
            curl_lines.append(line.strip())
            continue
        match = TOKEN.search(line)
        if match:
            cells = [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]
            tokens[cells[0]] = match.group(0)
    return DemoOutput(tokens=tokens, curl_lines=curl_lines, text=text)


@contextmanager
def session_on(database_url: str) -> Iterator[Session]:
    """A session on ``database_url`` (rolled back and disposed afterwards)."""
    engine = make_engine(database_url)
    try:
        with Session(engine) as db:
            yield db
    finally:
        engine.dispose()


@dataclass(frozen=True)
class SeededDemo:
    """A SQLite file on which ``gatherly demo --no-serve`` ran once, and what it printed."""

    database_url: str
    output: DemoOutput
