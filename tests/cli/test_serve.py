"""``gatherly serve`` for real: a uvicorn subprocess on the seeded demo database, over HTTP."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.contact.models import Contact
from gatherly.org import service as org
from gatherly.org.models import BusinessUnit
from tests.cli.helpers import SeededDemo, gatherly_executable, session_on, subprocess_env

STARTUP_TIMEOUT = 20.0


@dataclass(frozen=True)
class Server:
    """A running ``gatherly serve`` and the demo tokens it accepts."""

    base_url: str
    tokens: dict[str, str]
    database_url: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until_healthy(proc: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"gatherly serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            response = httpx.get(f"{base_url}/healthz", timeout=1.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if response.status_code == 200:
            return
        time.sleep(0.1)
    pytest.fail(f"gatherly serve did not answer /healthz in {STARTUP_TIMEOUT}s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(seeded_demo: SeededDemo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own console script with fixed arguments
            [gatherly_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=subprocess_env(seeded_demo.database_url),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(proc, base_url, log)
            yield Server(base_url, seeded_demo.output.tokens, seeded_demo.database_url)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def count_as(server: Server, username: str | None) -> httpx.Response:
    headers = {} if username is None else {"Authorization": f"Bearer {server.tokens[username]}"}
    return httpx.get(f"{server.base_url}/api/v1/contacts/count", headers=headers, timeout=10)


def _count_in(db: Session, *bu_ids: int) -> int:
    stmt = select(func.count()).select_from(Contact).where(Contact.owning_bu_id.in_(bu_ids))
    return int(db.execute(stmt).scalar_one())


def _bu_id(db: Session, name: str) -> int:
    return int(db.execute(select(BusinessUnit.id).where(BusinessUnit.name == name)).scalar_one())


def test_server_answers_healthz_and_serves_the_openapi_document(server: Server) -> None:
    health = httpx.get(f"{server.base_url}/healthz", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    response = httpx.get(f"{server.base_url}/api/v1/openapi.json", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Gatherly"
    assert "/api/v1/contacts/count" in document["paths"]


def test_request_without_a_token_is_unauthorized(server: Server) -> None:
    response = count_as(server, None)
    assert response.status_code == 401
    bad = httpx.get(
        f"{server.base_url}/api/v1/contacts/count",
        headers={"Authorization": "Bearer gly_not-a-real-token"},
        timeout=10,
    )
    assert bad.status_code == 401


def test_contact_count_narrows_from_organization_to_user_level(server: Server) -> None:
    counts = {}
    for username in ("olivia", "emma", "gustav", "ulla"):
        response = count_as(server, username)
        assert response.status_code == 200, response.text
        counts[username] = response.json()["count"]

    # Organization > parent-child > business unit > user level (the demo's Teams sync
    # added contacts of its own, owned by gustav in Germany).
    with session_on(server.database_url) as db:
        assert counts["olivia"] == db.scalar(select(func.count()).select_from(Contact))
    assert counts["olivia"] > counts["emma"] > counts["gustav"] > counts["ulla"] > 0

    # And each number is exactly what the level means on the seeded data.
    with session_on(server.database_url) as db:
        emea, germany = _bu_id(db, "EMEA"), _bu_id(db, "Germany")
        # Marketing Manager in EMEA: EMEA and every BU below it.
        assert counts["emma"] == _count_in(db, *org.subtree_ids(db=db, bu_id=emea))
        # Marketer in Germany, plus the EMEA Events Team's Marketer role anchored at EMEA.
        assert counts["gustav"] == _count_in(db, germany, emea)
        # Marketing Assistant: only the contacts ulla owns.
        ulla = org.get_user_by_username(db=db, username="ulla")
        owned = org.owned_record_count(db=db, owner_type="user", owner_id=ulla.id)
        assert counts["ulla"] == owned["contact"]
