"""``gatherly graph-emulator`` for real: a subprocess on a free port, and bad fixtures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.graph_emulator import fixture as fx

GATHERLY = str(Path(sys.executable).parent / "gatherly")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    env["NO_COLOR"] = "1"
    return env


def test_command_serves_the_fixture(tmp_path: Path) -> None:
    path = tmp_path / "tenant.json"
    path.write_text(json.dumps(fx.build()))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "emulator.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own console script
            [GATHERLY, "graph-emulator", "--fixture", str(path), "--port", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_env(),
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                state = httpx.get(f"{base}/_emulator/state", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert state.json()["tenant"] == fx.TENANT
        token = httpx.post(
            f"{base}/{fx.TENANT}/oauth2/v2.0/token",
            data={
                "client_id": fx.APP,
                "client_secret": fx.SECRET,
                "scope": "https://graph.microsoft.com/.default",
                "grant_type": "client_credentials",
            },
        ).json()["access_token"]
        webinars = httpx.get(
            f"{base}/v1.0/solutions/virtualEvents/webinars",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert {w["id"] for w in webinars.json()["value"]} == {fx.LAUNCH, fx.DRAFT}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert f"Graph emulator for tenant {fx.TENANT} on {base}" in log.read_text()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "error: webinars[0].sessions[0].startDateTime: missing"),
        ("{oops", "error: fixture "),
    ],
)
def test_bad_fixture_is_one_line(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "tenant.json"
    if content is None:
        data = fx.build()
        del data["webinars"][0]["sessions"][0]["startDateTime"]
        content = json.dumps(data)
    path.write_text(content)
    result = subprocess.run(  # noqa: S603 - our own console script
        [GATHERLY, "graph-emulator", "--fixture", str(path), "--port", str(_free_port())],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
    assert "Traceback" not in result.stderr
