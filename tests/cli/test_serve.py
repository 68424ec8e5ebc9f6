"""``gatherly serve --workers 2`` for real: two API processes on (a copy of) the seeded demo
database, over HTTP; a role change reaches both on the next request, and SIGTERM stops
them cleanly."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
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

STARTUP_TIMEOUT = 60.0  # two fresh interpreters import the app; a busy box is slow at it


@dataclass(frozen=True)
class Server:
    """A running ``gatherly serve`` and the demo tokens it accepts."""

    base_url: str
    tokens: dict[str, str]
    database_url: str
    pid: int  # of `gatherly serve`, whose children are the API processes


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


def _children(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().split()[3]) == pid:
                found.append(int(entry.name))
        except (OSError, IndexError):  # gone meanwhile
            continue
    return found


def _api_processes(pid: int) -> list[int]:
    return [
        child
        for child in _children(pid)
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]


@pytest.fixture(scope="module")
def server(seeded_demo: SeededDemo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    where = tmp_path_factory.mktemp("serve")
    log = where / "server.log"
    # A copy: the tests change roles, and the demo database is shared read-only.
    source = seeded_demo.database_url.removeprefix("sqlite:///")
    with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(where / "g.db")) as dst:
        src.backup(dst)
    database_url = f"sqlite:///{where / 'g.db'}"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 - our own console script with fixed arguments
            [gatherly_executable(), "serve", "--port", str(port), "--workers", "2", "--no-worker"],
            env=subprocess_env(database_url),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(proc, base_url, log)
            assert len(_api_processes(proc.pid)) == 2, log.read_text()
            # One process answering is not both listening: each settles first (core/serving.py).
            deadline = time.monotonic() + 30
            while not all(_sockets_of(pid, port, "0A") for pid in _api_processes(proc.pid)):
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            yield Server(base_url, seeded_demo.output.tokens, database_url, proc.pid)
            children = _api_processes(proc.pid)
            proc.send_signal(signal.SIGTERM)  # what systemd sends
            assert proc.wait(timeout=20) == 0, log.read_text()
            assert not [c for c in children if Path(f"/proc/{c}").exists()]
        finally:
            if proc.poll() is None:
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


def test_a_role_taken_away_counts_on_the_next_request_in_both_processes(server: Server) -> None:
    def counts() -> set[int]:
        # A new connection each time: the kernel hands them to either process.
        return {count_as(server, "gustav").json()["count"] for _ in range(12)}

    with session_on(server.database_url) as db:
        gustav = org.get_user_by_username(db=db, username="gustav").id
        marketer = org.get_role_by_name(db=db, name="Marketer").id
    (before,) = counts()  # every answer the same, from both processes' caches
    with session_on(server.database_url) as db:
        org.unassign_role(db=db, role_id=marketer, user_id=gustav)
        db.commit()
    try:
        (after,) = counts()
        assert after < before
    finally:
        with session_on(server.database_url) as db:
            org.assign_role(db=db, role_id=marketer, user_id=gustav)
            db.commit()
    assert counts() == {before}


def test_serve_refuses_a_database_it_would_not_upgrade(tmp_path: Path) -> None:
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    done = subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [gatherly_executable(), "serve", "--no-upgrade", "--port", str(free_port())],
        env=subprocess_env(empty),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "not starting: no schema" in done.stderr
    assert "gatherly db upgrade" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("GATHERLY_LOG_LEVEL", "loud", "error (GATHERLY_LOG_LEVEL): Input should be 'DEBUG'"),
        ("GATHERLY_QUEUE_NAME", "two words", "error (GATHERLY_QUEUE_NAME): String should match"),
    ],
)
def test_a_bad_setting_is_named_without_a_traceback(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = subprocess_env(f"sqlite:///{tmp_path / 'g.db'}") | {variable: value}
    done = subprocess.run(  # noqa: S603 - our own console script with fixed arguments
        [gatherly_executable(), "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "g.db").exists()  # nothing done


def _sockets_of(pid: int, port: int, state: str, peers: set[int] | None = None) -> int:
    """TCP sockets on local ``port`` in ``state`` (Linux /proc: "01" established, "0A"
    listening) that process ``pid`` holds; with ``peers``, only those connected from these
    local ports: the test's own, not a connection another test left open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            peer_port = int(fields[2].rsplit(":", 1)[1], 16)
            if (
                local_port == port
                and (peers is None or peer_port in peers)
                and fields[3] == state
                and fields[9] in inodes
            ):
                found += 1
    return found


def test_a_burst_of_keep_alive_connections_is_spread_over_both_processes(
    server: Server,
) -> None:
    # What a proxy's pool or a load generator opens at once: with one shared socket, the
    # first process to wake took them all, and kept them (core/serving.py).
    port = int(server.base_url.rsplit(":", 1)[1])
    # Connected all at once (the kernel completes them before any process accepts), then
    # each asked for something, so that every one has been accepted by some process.
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(24)]
    try:
        for client in clients:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: gatherly\r\n\r\n")
        for client in clients:
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
        peers = {client.getsockname()[1] for client in clients}
        held = [_sockets_of(pid, port, "01", peers) for pid in _api_processes(server.pid)]
    finally:
        for client in clients:
            client.close()
    assert sum(held) == 24
    assert min(held) >= 4, held  # an even split is 12 each; all on one is the bug
