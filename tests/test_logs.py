"""Log lines (issue 20): JSON or console, the request id on a request's lines and in the
jobs it queues, and no secret in any line — each checked on what ``logs.configure`` really
writes, through the real app, queue and consumer."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core import crypto, health, logs
from gatherly.core.config import Settings
from gatherly.core.db import make_engine
from gatherly.email import smtp
from gatherly.jobs.queue import Jobs
from gatherly.org import service as org
from gatherly.web import auth
from tests import factories as f
from tests.smtp_sink import free_port
from tests.teams.conftest import tenant, tenant_server
from tests.web.conftest import csrf_of

__all__ = ["tenant", "tenant_server"]  # the Graph emulator, for the Teams connection

HEX_ID = re.compile(r"[0-9a-f]{32}")
CLIENT_SIDE = ("httpx", "httpcore", "asyncio")  # the test client's, outside any request


@dataclass
class Captured:
    """What the root handler wrote since ``configure``."""

    stream: io.StringIO

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text().splitlines()]

    def server_lines(self) -> list[dict[str, Any]]:
        """Lines written by the app (and its threads), not by the test client."""
        return [e for e in self.lines() if not e["logger"].startswith(CLIENT_SIDE)]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def configure(log_format: str = "json", stream: io.StringIO | None = None) -> Captured:
    out = Captured(stream if stream is not None else io.StringIO())
    logs.configure(Settings(log_level="DEBUG", log_format=log_format), stream=out.stream)
    return out


@pytest.fixture
def captured(restore_logging: None) -> Captured:
    """JSON lines at DEBUG, as production writes them, into a buffer."""
    return configure()


def test_json_lines_carry_time_level_logger_event_and_bound_values(captured: Captured) -> None:
    with structlog.contextvars.bound_contextvars(request_id="r-1", task="t"):
        logging.getLogger("gatherly.sample").info("run %s: %s", 7, "succeeded", extra={"n": 2})
        structlog.get_logger("gatherly.native").warning("native line", count=3)
    logging.getLogger("uvicorn.error").info("Started server process")
    first, native, server = captured.lines()
    assert first["event"] == "run 7: succeeded"  # %-arguments formatted as before
    assert (first["level"], first["logger"]) == ("info", "gatherly.sample")
    assert (first["request_id"], first["task"], first["n"]) == ("r-1", "t", 2)
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.utcoffset() == UTC.utcoffset(None)  # UTC, with its zone
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60
    assert native | {"timestamp": None} == {
        "event": "native line",
        "count": 3,
        "request_id": "r-1",
        "task": "t",
        "level": "warning",
        "logger": "gatherly.native",
        "timestamp": None,
    }
    assert (server["logger"], "request_id" in server) == ("uvicorn.error", False)


def test_console_lines_are_readable_and_auto_picks_by_terminal(restore_logging: None) -> None:
    console = configure("console")
    with structlog.contextvars.bound_contextvars(request_id="r-2"):
        logging.getLogger("gatherly.sample").warning("queue %s is late", "email")
    line = console.text().rstrip("\n")
    assert "\n" not in line
    assert not line.startswith("{")  # not JSON
    assert "\x1b" not in line  # no colours where no terminal shows them
    assert re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \[warning\s*\] queue email is late", line
    )
    assert "[gatherly.sample]" in line
    assert "request_id=r-2" in line
    terminal = configure("auto", Terminal())
    logging.getLogger("gatherly.sample").info("hello")
    assert "\x1b[" in terminal.text()  # coloured for a terminal
    assert "hello" in terminal.text()
    assert not terminal.text().startswith("{")
    piped = configure("auto")
    logging.getLogger("gatherly.sample").info("hello")
    assert json.loads(piped.text())["event"] == "hello"


def test_configure_again_replaces_its_handler(restore_logging: None) -> None:
    configure()
    again = configure()
    logging.getLogger("gatherly.sample").info("once")
    assert [e["event"] for e in again.lines()] == ["once"]
    assert sum(isinstance(h, logs._Handler) for h in logging.getLogger().handlers) == 1


def test_every_line_of_a_request_carries_its_id_and_the_header_matches(
    captured: Captured, client: TestClient
) -> None:
    # The queue cannot be opened: the readiness check's thread logs why, within the request.
    client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"queue_path": "/dev/null/queue.db"}
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    request_id = response.headers["X-Request-ID"]
    assert HEX_ID.fullmatch(request_id)
    lines = captured.server_lines()
    assert {e["logger"] for e in lines} >= {"gatherly.core.health", "gatherly.access"}
    assert {e.get("request_id") for e in lines} == {request_id}
    access = [e for e in lines if e["logger"] == "gatherly.access"]
    assert len(access) == 1
    assert (access[0]["method"], access[0]["path"], access[0]["status"]) == ("GET", "/readyz", 503)
    assert access[0]["duration_ms"] > 0

    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    again = [e for e in captured.server_lines() if e.get("request_id") != request_id]
    assert {e.get("request_id") for e in again} == {missing.headers["X-Request-ID"]}
    assert [(e["path"], e["status"]) for e in again if e["logger"] == "gatherly.access"] == [
        ("/api/v1/no-such-thing", 404)
    ]


def test_access_line_names_the_route_not_the_path(captured: Captured, client: TestClient) -> None:
    client.get("/email/u/secret-unsubscribe-token")
    lines = captured.server_lines()
    (access,) = [e for e in lines if e["logger"] == "gatherly.access"]
    assert access["path"] == "/email/u/{token}"
    assert "secret-unsubscribe-token" not in json.dumps(lines)


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("edge-7f3a.b:c_d", True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ("<script>", False),
        ("", False),
    ],
)
def test_incoming_request_id_is_kept_when_sane(
    captured: Captured, client: TestClient, sent: str, kept: bool
) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": sent})
    answered = response.headers["X-Request-ID"]
    assert (answered == sent) is kept
    if not kept:
        assert HEX_ID.fullmatch(answered)
    (access,) = [e for e in captured.lines() if e["logger"] == "gatherly.access"]
    assert access["request_id"] == answered
    assert access["level"] == "debug"  # probes: their access lines only at DEBUG


def test_a_500_carries_the_header_and_its_access_line(captured: Captured) -> None:
    app = FastAPI()

    @app.get("/boom")
    def boom() -> None:
        logging.getLogger("gatherly.sample").error("about to fail")
        raise RuntimeError("broken")

    logs.install(app)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/boom", headers={"X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    lines = captured.server_lines()
    assert [(e["event"], e["request_id"]) for e in lines] == [
        ("about to fail", "req-500"),
        ("GET /boom 500", "req-500"),
    ]


def test_a_job_queued_by_a_request_logs_with_its_request_id(
    captured: Captured,
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
) -> None:
    admin = f.user(db, "admin", org.get_root(db=db), "System Administrator")
    headers = f.token(db, admin)
    # A new contact is a data change: its commit queues the segment refresh.
    response = client.post("/api/v1/contacts", json={"email": "ada@example.com"}, headers=headers)
    assert response.status_code == 201, response.text
    request_id = response.headers["X-Request-ID"]
    settings = client.app.state.settings  # type: ignore[attr-defined]
    jobs = Jobs(settings, session_factory=session_factory)
    assert [t.name for t in jobs.huey.pending()] == ["segments.process"]

    consumer = jobs.consumer(workers=1, schedule=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    consumer.start()  # a real consumer: its worker thread takes the task from the queue
    try:
        deadline = time.monotonic() + 10
        while not any("executed in" in e["event"] for e in captured.lines()):
            assert time.monotonic() < deadline, captured.text()
            time.sleep(0.02)
    finally:
        consumer.stop(graceful=True)
        for number, handler in handlers.items():
            signal.signal(number, handler)
    ran = [e for e in captured.lines() if e.get("task") == "segments.process"]
    assert any(e["event"].startswith("Executing") for e in ran)
    assert {e.get("request_id") for e in ran} == {request_id}
    assert {e["task_id"].endswith(f"+{request_id}") for e in ran} == {True}
    # The consumer's own lines, outside any task, carry neither.
    started = [e for e in captured.lines() if e["event"].startswith("Huey consumer started")]
    assert started
    assert {"request_id", "task"}.isdisjoint(started[0])


def test_periodic_tasks_run_with_their_name_and_no_request_id(
    captured: Captured, tmp_path: Path, session_factory: sessionmaker[Session]
) -> None:
    jobs = Jobs(
        Settings(queue_path=str(tmp_path / "q.db"), database_url="sqlite://"),
        session_factory=session_factory,
    )
    with structlog.contextvars.bound_contextvars(request_id="from-a-request"):
        jobs.journeys_tick()  # stamped with the bound id
    jobs.huey.enqueue(jobs.email_schedule.s())  # as the scheduler queues it: no id
    for task in jobs.huey.pending():
        jobs.huey.execute(task)
    executing = {e["task"]: e.get("request_id") for e in captured.lines() if "task" in e}
    assert executing == {"journeys.tick": "from-a-request", "email.schedule": None}


def test_no_secret_reaches_the_log(
    captured: Captured,
    client: TestClient,
    db: Session,
    tenant: Any,
) -> None:
    password = "correct horse battery staple"
    admin = f.user(db, "admin", org.get_root(db=db), "System Administrator")
    org.set_password(db=db, user_id=admin.id, password=password)
    headers = f.token(db, admin)
    api_token = headers["Authorization"].removeprefix("Bearer ")
    wrong_token = "gly_" + "Wr0ngT0ken" * 4
    app = tenant.app(0)
    client_secret = app["secret"]
    smtp_password = "smtp-pa55-word"
    db_password = "db-pa55-word"
    secret_key = "a-weak-secret-key"
    secrets = [password, api_token, wrong_token, client_secret, smtp_password, db_password]

    # Sign in through the web form.
    form = client.get("/signin")
    signed_in = client.post(
        "/signin",
        data={"username": "admin", "password": password, "csrf": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert signed_in.status_code == 303
    session_cookie = client.cookies[auth.SESSION_COOKIE]
    secrets.append(session_cookie)
    client.cookies.clear()
    # The API with a token, and with one that is not.
    assert client.get("/api/v1/contacts/count", headers=headers).status_code == 200
    refused = client.get(
        "/api/v1/contacts/count", headers={"Authorization": f"Bearer {wrong_token}"}
    )
    assert refused.status_code == 401
    # Connect Teams: the client secret goes to the identity platform (msal, httpx).
    connected = client.put(
        "/api/v1/integrations/teams/connection",
        headers=headers,
        json={
            "tenant_id": tenant.tenant_id,
            "client_id": app["appId"],
            "client_secret": client_secret,
            "authority": f"{tenant.base_url}/{tenant.tenant_id}",
            "graph_url": f"{tenant.base_url}/v1.0",
        },
    )
    assert connected.status_code == 200, connected.text
    graph_tokens = list(tenant.state.tokens)  # the access tokens the emulator issued
    assert graph_tokens
    secrets += graph_tokens + [t.rsplit(".", 1)[1] for t in graph_tokens]
    # The SMTP password in the settings: a server that cannot be reached.
    settings = Settings(
        smtp_url=SecretStr(f"smtp://mailer:{smtp_password}@127.0.0.1:{free_port()}")
    )
    with smtp.Mailer(settings) as mailer:
        outcome = mailer.send(EmailMessage(), sender="a@example.com", recipient="b@example.com")
    logging.getLogger("gatherly.email.delivery").warning("send 1 failed: %s", outcome.detail)
    # A database URL with a password, that does not answer.
    engine = make_engine(f"postgresql+psycopg://gatherly:{db_password}@127.0.0.1:{free_port()}/x")
    try:
        assert not health.readiness(engine=engine, jobs=lambda: Jobs(settings)).ready
    finally:
        engine.dispose()
    # A weak secret key is warned about (never shown).
    crypto.resolve(Settings(secret_key=SecretStr(secret_key)))
    secrets.append(secret_key)

    # What careless code might write: the values themselves, in every form.
    log = logging.getLogger("gatherly.careless")
    log.debug("connecting to %s", engine.url.render_as_string(hide_password=False))
    log.debug("smtp %s", settings.smtp_url.get_secret_value() if settings.smtp_url else "")
    log.debug("headers %s", {"Authorization": f"Bearer {api_token}", "Cookie": "x"})
    log.debug("body password=%s&client_secret=%s", password.replace(" ", "+"), client_secret)
    log.debug('json {"client_secret": "%s", "password": "%s"}', client_secret, password)
    log.info("login", extra={"password": password, "smtp_password": smtp_password})
    structlog.get_logger("gatherly.careless").info(
        "bound",
        api_token=api_token,
        authorization=f"Bearer {wrong_token}",
        secret_key=secret_key,
        cookie=f"{auth.SESSION_COOKIE}={session_cookie}",
    )
    try:
        raise ValueError(f"cannot reach postgresql://gatherly:{db_password}@db/x")
    except ValueError:
        log.exception("failed")

    text = captured.text()
    events = {e["logger"] for e in captured.lines()}
    assert {"gatherly.access", "msal.application", "httpx", "gatherly.core.crypto"} <= events
    assert text.count("***") >= 10  # the careless lines were written, masked
    leaked = [s for s in secrets if s in text]
    assert leaked == []
