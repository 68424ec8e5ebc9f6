"""Prometheus metrics (issue 20): ``/metrics`` behind its token, answering JSON errors;
latency by route template; jobs, sync runs, Graph requests and the segment refresh lag
recorded where they happen; several processes summed in one scrape.

prometheus_client's metrics are global to a process and tests share processes, so every
assertion is on a difference between two readings, never on an absolute value.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core import metrics
from gatherly.core.changes import DataChange
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.graph import ClientSecretCredential, GraphClient, SyncASGITransport, Throttled
from gatherly.graph_emulator import EmulatorState, create_emulator_app
from gatherly.graph_emulator.state import Faults
from gatherly.jobs.queue import Jobs, app_jobs
from gatherly.segment import jobs as segment_jobs
from gatherly.teams.sync import run_sync
from tests.api.helpers import assert_error
from tests.graph_emulator import fixture as fx
from tests.routing import api_route_pairs

pytestmark = pytest.mark.sqlite_only  # nothing here differs by database

TOKEN = "scrape-token-for-the-tests"
LATENCY = "gatherly_http_request_duration_seconds"
Scraped = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # (name, labels) -> value


def _value(name: str, **labels: str) -> float:
    """This process's current value of a sample (0 before its first use)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _parse(text: str) -> Scraped:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sample(scraped: Scraped, name: str, **labels: str) -> float:
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def _with_token(client: TestClient) -> dict[str, str]:
    app = client.app
    app.state.settings = app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"metrics_token": SecretStr(TOKEN)}
    )
    return {"Authorization": f"Bearer {TOKEN}"}


def _scrape(client: TestClient, headers: dict[str, str]) -> str:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


def test_metrics_are_off_without_a_token(client: TestClient) -> None:
    error = assert_error(client.get("/metrics"), 404)
    assert "GATHERLY_METRICS_TOKEN" in error["message"]
    # JSON like the API, not the web UI's error page, whatever goes wrong.
    assert_error(client.post("/metrics"), 405)
    (route,) = [r for r, path in api_route_pairs(client.app) if path == "/metrics"]  # type: ignore[arg-type]
    assert not route.include_in_schema  # not in the API document


def test_a_scrape_needs_the_token(client: TestClient) -> None:
    _with_token(client)
    for wrong in (
        {},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Bearer "},
    ):
        refused = client.get("/metrics", headers=wrong)
        error = assert_error(refused, 401)
        assert "metrics token" in error["message"]
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert TOKEN not in refused.text


def test_latency_is_labelled_by_route_template_never_by_path(client: TestClient) -> None:
    headers = _with_token(client)
    before = _parse(_scrape(client, headers))
    client.get("/api/v1/contacts/424242")  # 401 without a user's token: the route still counts
    client.get("/no-such-page/737373")
    text = _scrape(client, headers)
    after = _parse(text)

    def grew(**labels: str) -> float:
        name = f"{LATENCY}_count"
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    route = "/api/v1/contacts/{record_id}"
    assert grew(method="GET", route=route, status="4xx") == 1
    assert grew(method="GET", route=metrics.UNMATCHED, status="4xx") == 1
    assert grew(method="GET", route="/metrics", status="2xx") == 1  # the first scrape
    assert "424242" not in text
    assert "737373" not in text
    bounds = {
        dict(labels)["le"]
        for (name, labels) in after
        if name == f"{LATENCY}_bucket" and dict(labels)["route"] == route
    }
    assert {"0.001", "0.002", "0.003", "0.005", "0.01", "0.025", "0.05"} <= bounds


def test_the_scrape_reads_queue_depth_and_segment_refresh_lag(
    client: TestClient, session_factory: sessionmaker[Session]
) -> None:
    headers = _with_token(client)
    app_jobs(client.app).enqueue_duplicates(job_id=1)  # waits: no worker runs in the test
    with session_factory() as db:
        db.add(
            DataChange(topic="contact", contact_ids=[1], created_at=utcnow() - timedelta(minutes=5))
        )
        db.commit()
    waiting = _parse(_scrape(client, headers))
    assert _sample(waiting, metrics.QUEUE_PENDING) == 1
    assert 300 <= _sample(waiting, metrics.CHANGES_OLDEST_AGE) < 330

    lag = "gatherly_segment_change_lag_seconds"
    count, total = _value(f"{lag}_count", topic="contact"), _value(f"{lag}_sum", topic="contact")
    assert segment_jobs.process_changes(session_factory).changes == 1
    assert _value(f"{lag}_count", topic="contact") - count == 1
    assert 300 <= _value(f"{lag}_sum", topic="contact") - total < 330
    assert _sample(_parse(_scrape(client, headers)), metrics.CHANGES_OLDEST_AGE) == 0


def _wait_for(what: str, done: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_jobs_run_by_a_consumer_are_timed_by_task_and_outcome(
    session_factory: sessionmaker[Session], database_url: str, tmp_path: Path
) -> None:
    settings = Settings(database_url=database_url, queue_path=str(tmp_path / "queue.db"))
    jobs = Jobs(settings, session_factory=session_factory)

    @jobs.huey.task(name="test.works")  # type: ignore[untyped-decorator]
    def works() -> None:
        time.sleep(0.01)

    @jobs.huey.task(name="test.fails")  # type: ignore[untyped-decorator]
    def fails() -> None:
        raise RuntimeError("on purpose")

    count = "gatherly_job_duration_seconds_count"
    ran = {"task": "test.works", "outcome": "complete"}
    failed = {"task": "test.fails", "outcome": "error"}
    before = (
        _value(count, **ran),
        _value(count, **failed),
        _value("gatherly_job_duration_seconds_sum", **ran),
    )
    works()
    fails()
    consumer = jobs.consumer(workers=1, schedule=False)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    consumer.start()  # sets its own signal handlers: put back below
    try:
        _wait_for(
            "both jobs",
            lambda: _value(count, **failed) > before[1] and _value(count, **ran) > before[0],
        )
    finally:
        consumer.stop(graceful=True)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    assert _value(count, **ran) - before[0] == 1
    assert _value(count, **failed) - before[1] == 1
    assert _value("gatherly_job_duration_seconds_sum", **ran) - before[2] >= 0.01


def test_a_sync_run_is_counted_by_kind_and_outcome(
    session_factory: sessionmaker[Session], database_url: str
) -> None:
    name = "gatherly_teams_sync_runs_total"
    before = _value(name, kind="full", outcome="failed")
    settings = Settings(database_url=database_url)
    assert run_sync(session_factory, settings).status == "failed"  # Teams is not connected
    assert _value(name, kind="full", outcome="failed") - before == 1
    run_sync(session_factory, settings, dry_run=True)  # a rehearsal is not a run
    assert _value(name, kind="full", outcome="failed") - before == 1


def test_graph_requests_and_throttling_are_counted() -> None:
    state = EmulatorState(fx.build(), page_size=4)
    transport = SyncASGITransport(create_emulator_app(state))
    base = "http://graph.test"
    credential = ClientSecretCredential(
        f"{base}/{fx.DOMAIN}", fx.APP, SecretStr(fx.SECRET), transport=transport
    )
    webinar = f"/solutions/virtualEvents/webinars/{fx.LAUNCH}"
    requests, throttled = "gatherly_graph_requests_total", "gatherly_graph_throttled_total"
    waited = "gatherly_graph_retry_wait_seconds_total"

    def wait_total() -> float:
        return _value(waited, reason="retry_after") + _value(waited, reason="backoff")

    ok, refused = (
        _value(requests, method="GET", status="200"),
        _value(requests, method="GET", status="429"),
    )
    slowed, wait = _value(throttled, status="429"), wait_total()
    with GraphClient(
        f"{base}/v1.0", credential, transport=transport, max_attempts=2, sleep=lambda _s: None
    ) as graph:
        graph.get_json(webinar)
        assert _value(requests, method="GET", status="200") - ok == 1
        state.faults = Faults(rate=1.0, kinds=["429"], retry_after=0.5)
        with pytest.raises(Throttled):
            graph.get_json(webinar)
    assert _value(requests, method="GET", status="429") - refused == 2
    assert _value(throttled, status="429") - slowed == 2
    assert wait_total() > wait  # one wait between the two attempts


def test_prepare_processes_does_nothing_for_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)
    assert metrics.prepare_processes(Settings(), processes=1) is None
    assert metrics.MULTIPROC_ENV not in os.environ


RECORD = """
from gatherly.core import metrics
metrics.graph_answered("GET", 200)
metrics.HTTP_REQUEST_SECONDS.labels("GET", "/x/{id}", "2xx").observe(0.003)
"""


def test_processes_of_several_commands_are_summed_in_one_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = [tmp_path / "serve-11", tmp_path / "worker-22"]  # as prepare_processes names them
    running = []
    for group in groups:
        group.mkdir()
        env = {**os.environ, metrics.MULTIPROC_ENV: str(group)}
        running.append(subprocess.Popen([sys.executable, "-c", RECORD], env=env))  # noqa: S603
    assert [p.wait(timeout=30) for p in running] == [0, 0]

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(groups[0]))  # a server process's view
    body, media_type = metrics.exposition(None)
    assert media_type.startswith("text/plain")
    scraped = _parse(body.decode())
    assert _sample(scraped, "gatherly_graph_requests_total", method="GET", status="200") == 2
    latency = {"method": "GET", "route": "/x/{id}", "status": "2xx"}
    assert _sample(scraped, f"{LATENCY}_count", **latency) == 2
    assert _sample(scraped, f"{LATENCY}_bucket", le="0.005", **latency) == 2
    assert _sample(scraped, f"{LATENCY}_bucket", le="0.002", **latency) == 0


# The way the commands use it: the parent imported gatherly (and prometheus_client) before
# it knew how many processes it would start; its forked children record, it scrapes.
PARENT = """
import json, multiprocessing, sys
from pathlib import Path
from gatherly.core import metrics
from gatherly.core.config import Settings

root, dead, alive = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
(root / f"serve-{dead}").mkdir(parents=True)
(root / f"serve-{dead}" / "counter_1.db").write_bytes(b"left by a command that died")
(root / f"worker-{alive}").mkdir()
metrics.graph_answered("GET", 200)  # before: stays in this process's memory, not counted
own = metrics.prepare_processes(Settings(metrics_dir=root), processes=2, role="serve")

def child():
    metrics.graph_answered("GET", 200)

children = [multiprocessing.get_context("fork").Process(target=child) for _ in range(2)]
for c in children:
    c.start()
for c in children:
    c.join()
body, _ = metrics.exposition(None)
print(json.dumps({"own": own.name, "dirs": sorted(p.name for p in root.iterdir()),
                  "codes": [c.exitcode for c in children], "body": body.decode()}))
"""


def test_prepare_processes_sends_a_parents_children_to_files(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", ""])  # a pid no longer running
    finished.wait()
    root = tmp_path / "metrics"
    env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROC_ENV}
    done = subprocess.run(  # noqa: S603 - this interpreter, the script above
        [sys.executable, "-c", PARENT, str(root), str(finished.pid), str(os.getpid())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr, done.stderr  # prometheus-client's "Clearing labels"
    result = json.loads(done.stdout)
    assert result["codes"] == [0, 0]
    own = result["own"]
    assert own.startswith("serve-")
    # The dead command's files are gone; a running command's directory is left alone.
    assert result["dirs"] == sorted([own, f"worker-{os.getpid()}"])
    scraped = _parse(result["body"])
    assert _sample(scraped, "gatherly_graph_requests_total", method="GET", status="200") == 2
