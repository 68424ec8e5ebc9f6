"""Benchmark L1: the API under load on PostgreSQL, with the access benchmark's data.

A BU-level marketer (the access benchmark's "BU level" viewer: the non-root BU holding the
most contacts) reads through the real server, ``gatherly serve``, over HTTP on loopback:

  A. per-request cost: ``--requests`` sequential GETs of contacts it may read, on one
     keep-alive connection to each of two servers of one API process, one with the per-token
     principal cache on, the other with it off (``GATHERLY_PRINCIPAL_CACHE_SIZE=0``: the
     baseline, measured in the same run), answering in turn (``--block`` requests each, 50)
     so that both see the same background load; p50/p95/p99 client-side, the server's own
     time from its access log, CPU per request. Target: server time under 3 ms at p95.
  B. L1: two API processes, locust (headless, FastHttpUser, bench/locustfile.py) at a constant
     ``--rate`` requests/s (200) for ``--duration`` seconds (600): contact list pages
     following the cursor a few pages deep, one contact by id, the events list (its pages
     too) and one event. Targets: p99 under 50 ms, no errors.
  C. capacity: the same mix stepped up by ``--rate-step`` requests/s (100, 200, 300, …) for
     ``--step-seconds`` each (60) until p99 reaches 100 ms, a request fails or the rate is not
     achieved; reports the most requests/s held at p99 < 100 ms.

Everything runs on this machine: the load generator, the API processes and PostgreSQL share
its cores, so phase C measures the box, not the API alone (the CPU split is printed, with what
other work took meanwhile). Latency is measured by the client and so bounds the server's time
from above. A request unanswered after ``--timeout`` seconds (10) counts as an error; after
errors the state of the API's database connections is printed (all "idle in transaction"
while the API does nothing is the thread-pool deadlock: requests holding a connection wait
for a thread that requests waiting for a connection hold).

    .venv/bin/python bench/load.py                                   # 1M contacts, 10 minutes
    .venv/bin/python bench/load.py --contacts 50000 --duration 30 --step-seconds 15
    .venv/bin/python bench/load.py --phases A                        # the per-request cost only

Data: the access benchmark's PostgreSQL build (``bench/access.py``'s ``prepare``: schema
``bench_access`` for 1M contacts, ``bench_access_<n>_<seed>`` otherwise) plus ``--events``
marketing events (2,000) bulk-loaded once, owned in proportion to each user's contacts, and
recorded in the build's ``bench_meta``. Each run creates a fresh API token for the viewer.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import http.client
import json
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, delete, func, make_url, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))

import access
import bulkload
import datagen

from gatherly.access.engine import scope
from gatherly.contact.models import Contact
from gatherly.core.db import make_engine
from gatherly.event.models import MarketingEvent
from gatherly.org import service as org_service
from gatherly.org.directory import load_principal
from gatherly.org.models import User

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE / "locustfile.py"
GATHERLY = Path(sys.executable).with_name("gatherly")
HOST = "127.0.0.1"
APP_NAME = "gatherly-load"  # + the port: a server's PostgreSQL connections, for their CPU
API = "/api/v1"
CONTACT_ROUTE = f"{API}/contacts/{{record_id}}"
NOT_API = ("/metrics", "/readyz", "/healthz")

L1_P99_MS = 50.0
CAPACITY_P99_MS = 100.0
GET_P95_MS = 3.0
MIX = {"contacts page": 4, "contact": 3, "events page": 2, "event": 1}
PAGE_SIZE = 50
PAGES_DEEP = 5
SAMPLE_IDS = 1000  # readable contacts and events the users pick from
EVENTS_VERSION = 1  # bump when the generated events change
EVENT_COLUMNS = (
    *("id", "name", "description", "event_type", "status", "start_at", "end_at", "time_zone"),
    *("organizer_name", "organizer_email", "audience", "source", "external_id"),
    *("registrant_count", "attendee_count", "cancellation_count", "created_at", "modified_at"),
    *("owner_type", "owner_id", "owning_bu_id"),
)

log = access.log
Histograms = dict[str, list[tuple[float, float]]]  # route -> cumulative (le seconds, count)


# ------------------------------------------------------------------------------ the data


@dataclass
class Fixture:
    """Who signs in, what it may read, and where the data is."""

    viewer: datagen.Viewer
    token: str
    contacts: list[int]  # a sample of the contact ids the viewer may read
    events: list[int]
    readable_contacts: int
    readable_events: int
    database_url: str
    status: str


def ensure_events(engine: Engine, n: int, seed: int) -> str:
    """``n`` marketing events, bulk-loaded once per build (``bench_meta`` key ``load_events``).

    Owners are drawn in proportion to the contacts each user owns (the same skew), so the
    viewer reads about the share of events it reads of contacts; each event's owning BU is
    its owner's.
    """
    want = json.dumps({"version": EVENTS_VERSION, "events": n, "seed": seed})
    if datagen.read_meta(engine).get("load_events") == want:
        return "cached"
    t0 = time.perf_counter()
    with Session(engine) as db, db.begin():
        db.execute(delete(MarketingEvent).where(MarketingEvent.external_id.like("bench-load-%")))
        first = (db.scalar(select(func.max(MarketingEvent.id))) or 0) + 1
        rows = db.execute(
            select(User.id, User.business_unit_id, func.count(Contact.id))
            .join(Contact, (Contact.owner_id == User.id) & (Contact.owner_type == "user"))
            .group_by(User.id, User.business_unit_id)
            .order_by(User.id)
        ).all()
    rng = random.Random(f"{seed}-load-events")
    owners = rng.choices([(uid, bu) for uid, bu, _ in rows], weights=[c for *_, c in rows], k=n)

    def events() -> Iterator[tuple[Any, ...]]:
        for i, (uid, bu) in enumerate(owners):
            start = datagen.EPOCH + timedelta(hours=rng.randrange(3 * 365 * 24))
            made = start - timedelta(days=rng.randrange(10, 90))
            registered = rng.randrange(500)
            yield (
                *(first + i, f"Webinar {i:04d}", "A bench webinar.", "webinar", "published"),
                *(start, start + timedelta(hours=1), "UTC", f"Organizer {uid}", None, ""),
                *("manual", f"bench-load-{i}", registered, registered // 2, registered // 10),
                *(made, made, "user", uid, bu),
            )

    bulkload.load_tables(engine, [("marketing_event", EVENT_COLUMNS, events)])
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM bench_meta WHERE key = 'load_events'"))
        conn.execute(
            text("INSERT INTO bench_meta (key, value) VALUES ('load_events', :v)"), {"v": want}
        )
    return f"built in {time.perf_counter() - t0:.1f} s"


def prepare_fixture(args: argparse.Namespace) -> Fixture | None:
    """The access benchmark's build (reused or made), the events, the viewer and its token."""
    sizes = datagen.Sizes(seed=args.seed, contacts=args.contacts)
    engine = access.postgres_engine(args.pg_url, sizes)
    if engine is None:
        return None
    try:
        t0 = time.perf_counter()
        viewers, status = access.prepare(engine, sizes, {}, args.rebuild)
        log(f"contacts: {status} ({time.perf_counter() - t0:.0f} s)")
        ev_status = ensure_events(engine, args.events, args.seed)
        log(f"{args.events:,} events: {ev_status}")
        viewer = next(v for v in viewers if v.key == "bu")
        rng = random.Random(f"{args.seed}-load-ids")
        with Session(engine) as db:
            principal = load_principal(db, viewer.user)
            picked = []
            for model, record_type in ((Contact, "contact"), (MarketingEvent, "marketing_event")):
                stmt = scope(select(model.id), principal=principal, record_type=record_type)
                ids = list(db.scalars(stmt.order_by(model.id)))  # ordered: the same sample
                if not ids:
                    raise SystemExit(f"the viewer may read no {record_type}: nothing to load")
                picked.append((len(ids), sorted(rng.sample(ids, min(SAMPLE_IDS, len(ids))))))
        with Session(engine) as db, db.begin():
            _row, token = org_service.create_token(db=db, user_id=viewer.user, name="bench-load")
        (n_contacts, contacts), (n_events, events) = picked
        return Fixture(
            viewer=viewer,
            token=token,
            contacts=contacts,
            events=events,
            readable_contacts=n_contacts,
            readable_events=n_events,
            database_url=engine.url.render_as_string(hide_password=False),
            status=f"contacts {status}, events {ev_status}",
        )
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------ processes


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def group_pids(pgid: int) -> list[int]:
    """Live processes in the process group ``pgid`` (from /proc)."""
    return [pid for pid, _cpu in _group_stats(pgid)]


def _proc_stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first); None when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _group_stats(pgid: int) -> list[tuple[int, float]]:
    out = []
    for entry in Path("/proc").iterdir():
        fields = _proc_stat(entry.name) if entry.name.isdigit() else None
        if fields is not None and int(fields[2]) == pgid and fields[0] != "Z":
            out.append((int(entry.name), _cpu_seconds(fields)))
    return out


class PgProbe:
    """PostgreSQL's CPU (0 for a server on another host): the backends serving one of the
    benchmark's servers (their connections carry its ``application_name``), and the whole
    server's. The first misses backends that closed meanwhile (SQLAlchemy closes its overflow
    connections when they come back), the second counts other users of the server too."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.postmaster: int | None = None

    def sample(self, app_name: str) -> tuple[dict[int, float], dict[str, int], float, int]:
        """CPU seconds so far per backend pid of ``app_name``, how many of them are in each
        state, the whole server's CPU seconds so far (closed backends included), and the
        sessions opened so far on the database (PostgreSQL 14 on; 0 before)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT pid, state FROM pg_stat_activity WHERE application_name = :a"),
                {"a": app_name},
            ).all()
            try:
                with conn.begin_nested():
                    sessions = conn.scalar(
                        text(
                            "SELECT sessions FROM pg_stat_database "
                            "WHERE datname = current_database()"
                        )
                    )
            except DBAPIError:
                sessions = 0
            if self.postmaster is None:
                own = _proc_stat(conn.scalar(text("SELECT pg_backend_pid()")))
                self.postmaster = int(own[1]) if own else 0  # its parent
        states: dict[str, int] = {}
        for _pid, state in rows:
            states[state or "?"] = states.get(state or "?", 0) + 1
        found = {pid: _proc_stat(pid) for pid, _state in rows}
        cpu = {pid: _cpu_seconds(f) for pid, f in found.items() if f is not None}
        return cpu, states, self._server_cpu(), int(sessions or 0)

    def _server_cpu(self) -> float:
        main = _proc_stat(self.postmaster) if self.postmaster else None
        if main is None:
            return 0.0
        # its own time, its reaped children's (cutime + cstime), and its live children's
        total = _cpu_seconds(main) + (int(main[13]) + int(main[14])) / os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            fields = _proc_stat(entry.name) if entry.name.isdigit() else None
            if fields is not None and int(fields[1]) == self.postmaster:
                total += _cpu_seconds(fields)
        return total


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group."""
    return sum(cpu for _pid, cpu in _group_stats(pgid))


class Child:
    """A child process in a session of its own (Ctrl-C reaches only the benchmark, which
    stops it): SIGTERM, then SIGKILL to its whole group after ``grace`` seconds."""

    def __init__(self, name: str, cmd: list[str], *, env: dict[str, str], logfile: Path) -> None:
        self.name = name
        self.logfile = logfile
        with logfile.open("ab") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and commands
                cmd,
                env=env,
                cwd=logfile.parent,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: this process runs no threads
            )
        self.pgid = self.proc.pid

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log_tail(self, lines: int = 15) -> str:
        """The end of the process's output."""
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 20.0) -> None:
        """Stop it gracefully, then by force; no process of its group is left."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{self.name}: still running after {grace:.0f} s, killed")
        deadline = time.monotonic() + 5
        while group_pids(self.pgid) and time.monotonic() < deadline:
            time.sleep(0.1)  # its children exit after it
        if group_pids(self.pgid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pgid, signal.SIGKILL)
            log(f"{self.name}: processes left in its group, killed")
        self.proc.wait()


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server(Child):
    """``gatherly serve`` with ``workers`` API processes and no job worker."""

    def __init__(
        self,
        fx: Fixture,
        tmp: Path,
        *,
        workers: int,
        cache: int | None,
        upgrade: bool,
        access_log: bool = False,
    ) -> None:
        self.port = free_port()
        self.app_name = f"{APP_NAME}-{self.port}"
        self.metrics_token = secrets.token_urlsafe(16)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GATHERLY_", "PROM"))}
        env |= {
            "GATHERLY_DATABASE_URL": make_url(fx.database_url)
            .update_query_dict({"application_name": self.app_name})
            .render_as_string(hide_password=False),
            "GATHERLY_SECRET_KEY_FILE": str(tmp / "secret.key"),
            "GATHERLY_QUEUE_PATH": str(tmp / "queue.db"),
            # INFO: one access line per request with its duration, as JSON (``access_ms``)
            "GATHERLY_LOG_LEVEL": "INFO" if access_log else "WARNING",
            "GATHERLY_LOG_FORMAT": "json",
            "GATHERLY_METRICS_TOKEN": self.metrics_token,
        }
        if cache is not None:
            env["GATHERLY_PRINCIPAL_CACHE_SIZE"] = str(cache)
        # /metrics sums every API process's files (a name unlike serve's own <role>-<pid>)
        prom = tmp / f"prom_{self.port}"
        prom.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
        cmd = [str(GATHERLY), "serve", "--workers", str(workers), "--no-worker"]
        cmd += ["--host", HOST, "--port", str(self.port), "--grace", "5"]
        cmd.append("--upgrade" if upgrade else "--no-upgrade")
        size = "default" if cache is None else cache
        label = f"server ({workers} process{'es' if workers > 1 else ''}, cache size {size})"
        super().__init__(label, cmd, env=env, logfile=tmp / f"server-{self.port}.log")
        try:
            self._wait_ready(timeout=300 if upgrade else 60)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/readyz")[0] == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def get(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 30
    ) -> tuple[int, bytes]:
        """One GET on a fresh connection: (status, body)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def access_ms(self, route: str, offset: int = 0) -> list[float]:
        """The durations (ms) of the answered requests to ``route`` in the access log, from
        byte ``offset`` of the server's output on."""
        out = []
        with self.logfile.open("rb") as f:
            f.seek(offset)
            for raw in f:
                if not raw.startswith(b"{") or b'"gatherly.access"' not in raw:
                    continue
                line = json.loads(raw)
                if line.get("path") == route and line.get("status") == 200:
                    out.append(float(line["duration_ms"]))
        return out

    @property
    def base(self) -> str:
        """The server's base URL."""
        return f"http://{HOST}:{self.port}"

    def scrape(self) -> tuple[Histograms | None, dict[str, tuple[float, float]]]:
        """From /metrics: the product's request latency histogram, per route: cumulative
        (le s, count), None when /metrics does not answer in time (a stuck server); and
        the garbage collector's pauses so far by generation: (collections, seconds)."""
        auth = {"Authorization": f"Bearer {self.metrics_token}"}
        try:
            status, body = self.get("/metrics", auth, timeout=10)
        except (OSError, http.client.HTTPException) as exc:
            log(f"/metrics: {type(exc).__name__}: {exc}")
            return None, {}
        if status != 200:
            log(f"/metrics answered {status}: {body[:200]!r}")
            return None, {}
        counts: dict[str, dict[float, float]] = {}
        gc: dict[str, tuple[float, float]] = {}
        for family in text_string_to_metric_families(body.decode()):
            if family.name == "gatherly_gc_pause_seconds":
                for sample in family.samples:
                    n, secs = gc.get(sample.labels["generation"], (0.0, 0.0))
                    if sample.name.endswith("_count"):
                        n += sample.value
                    elif sample.name.endswith("_sum"):
                        secs += sample.value
                    gc[sample.labels["generation"]] = (n, secs)
            if family.name != "gatherly_http_request_duration_seconds":
                continue
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    route = counts.setdefault(sample.labels["route"], {})
                    le = float(sample.labels["le"])
                    route[le] = route.get(le, 0.0) + sample.value
        return {route: sorted(b.items()) for route, b in counts.items()}, gc


def verify(srv: Server, fx: Fixture) -> None:
    """The API agrees with the access engine: the count, and a few ids of each kind."""
    auth = {"Authorization": f"Bearer {fx.token}"}
    status, body = srv.get(f"{API}/contacts/count", auth)
    if status != 200 or json.loads(body)["count"] != fx.readable_contacts:
        raise RuntimeError(f"contacts/count: {status} {body[:200]!r}, want {fx.readable_contacts}")
    for what, ids in (("contacts", fx.contacts), ("events", fx.events)):
        for rid in ids[:: max(1, len(ids) // 20)]:
            status, body = srv.get(f"{API}/{what}/{rid}", auth)
            if status != 200:
                raise RuntimeError(f"GET {what}/{rid}: {status} {body[:200]!r}")


# ------------------------------------------------------------------------------ statistics


def pct(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of sorted samples, nearest rank."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def hist_diff(before: Histograms | None, after: Histograms | None) -> list[tuple[float, float]]:
    """Cumulative buckets of the API's requests between two scrapes, summed over its routes;
    empty when a scrape failed."""
    if before is None or after is None:
        return []
    total: dict[float, float] = {}
    for route, buckets in after.items():
        if route in NOT_API:
            continue
        old = dict(before.get(route, []))
        for le, c in buckets:
            total[le] = total.get(le, 0.0) + c - old.get(le, 0.0)
    return sorted(total.items())


def hist_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The q-quantile in ms, interpolated linearly within its bucket (as Prometheus'
    histogram_quantile); None without requests."""
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le * 1000
            return (prev_le + (le - prev_le) * (rank - prev_c) / max(c - prev_c, 1e-9)) * 1000
        prev_le, prev_c = le, c
    return prev_le * 1000


@dataclass
class Cpu:
    """CPU use over a window, in cores (1.0 = one core busy the whole time)."""

    box: float = 0.0
    server: float = 0.0
    pg: float = 0.0  # the server's own backends, those still open at the end
    pg_all: float = 0.0  # the whole PostgreSQL server
    locust: float = 0.0

    @property
    def rest(self) -> float:
        """Everything else on the machine (other work)."""
        return max(0.0, self.box - self.server - self.pg_all - self.locust)

    def line(self) -> str:
        """One line: the box, the API processes, PostgreSQL, locust, the rest."""
        return (
            f"CPU, in cores of {os.cpu_count()}: box {self.box:.2f} = API {self.server:.2f} + "
            f"PostgreSQL {self.pg_all:.2f} (all of it) + locust {self.locust:.2f} + the rest "
            f"{self.rest:.2f}"
        )


def _box_busy() -> float:
    """Busy CPU seconds of the whole machine so far (all but idle and I/O wait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Snapshot:
    """What the benchmark samples at both ends of a measured window."""

    wall: float
    box: float
    server: float
    pg: dict[int, float]
    pg_states: dict[str, int]  # the API's connections by state, e.g. {"idle": 3}
    pg_all: float
    sessions: int  # connections opened so far on the database, by anyone
    locust: float
    latency: Histograms | None
    gc: dict[str, tuple[float, float]]  # generation -> (collections, seconds) so far

    @classmethod
    def take(cls, srv: Server, pg: PgProbe, locust: Child | None = None) -> Snapshot:
        """Sample now."""
        pg_cpu, pg_states, pg_all, sessions = pg.sample(srv.app_name)
        latency, gc = srv.scrape()
        return cls(
            wall=time.monotonic(),
            box=_box_busy(),
            server=group_cpu(srv.pgid),
            pg=pg_cpu,
            pg_states=pg_states,
            pg_all=pg_all,
            sessions=sessions,
            locust=group_cpu(locust.pgid) if locust else 0.0,
            latency=latency,
            gc=gc,
        )

    def until(self, end: Snapshot) -> Cpu:
        """CPU use between this snapshot and ``end``, in cores (a backend that closed
        meanwhile is missed, one that opened counts whole)."""
        dt = max(end.wall - self.wall, 1e-9)
        pg = sum(cpu - self.pg.get(pid, 0.0) for pid, cpu in end.pg.items())
        return Cpu(
            box=(end.box - self.box) / dt,
            server=(end.server - self.server) / dt,
            pg=pg / dt,
            pg_all=(end.pg_all - self.pg_all) / dt,
            locust=(end.locust - self.locust) / dt,
        )


# ------------------------------------------------------------------------------ A: cost


@dataclass
class Cost:
    """Phase A's figures for one server configuration."""

    label: str
    ms: list[float]  # sorted client-side milliseconds
    server: list[float]  # sorted server-side milliseconds, from the server's access log
    cpu: Cpu
    seconds: float

    def cpu_ms(self, cores: float) -> float:
        """CPU milliseconds per request, from cores used over the timed requests."""
        return cores * self.seconds * 1000 / len(self.ms)


def sequential_gets(
    servers: Sequence[Server], fx: Fixture, n: int, block: int = 1
) -> list[list[float]]:
    """``n`` GETs of readable contacts from each server, the servers taking turns every
    ``block`` requests, each on one keep-alive connection: each server's sorted client-side
    ms."""
    conns = [http.client.HTTPConnection(HOST, srv.port, timeout=30) for srv in servers]
    headers = {"Authorization": f"Bearer {fx.token}"}
    out: list[list[float]] = [[] for _ in servers]
    try:
        for first in range(0, n, block):
            for conn, ms in zip(conns, out, strict=True):
                for i in range(first, min(first + block, n)):
                    path = f"{API}/contacts/{fx.contacts[i % len(fx.contacts)]}"
                    t0 = time.perf_counter_ns()
                    conn.request("GET", path, headers=headers)
                    resp = conn.getresponse()
                    body = resp.read()
                    ms.append((time.perf_counter_ns() - t0) / 1e6)
                    if resp.status != 200:
                        raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    finally:
        for conn in conns:
            conn.close()
    return [sorted(ms) for ms in out]


def phase_a(
    fx: Fixture, pg: PgProbe, args: argparse.Namespace, tmp: Path, upgrade: bool
) -> list[str]:
    """The per-request cost with the principal cache on and off, the two servers running side
    by side and answering in turn (so both see the same background load); returns the
    verdict lines."""
    labels = ("principal cache on", "cache off (baseline)")
    log("A: two servers of one API process each, the principal cache on and off")
    with contextlib.ExitStack() as stack:
        servers = []
        for size in (None, 0):
            servers.append(
                stack.enter_context(
                    Server(fx, tmp, workers=1, cache=size, upgrade=upgrade, access_log=True)
                )
            )
            upgrade = False  # the first one did
        for srv in servers:
            verify(srv, fx)
        sequential_gets(servers, fx, args.warmup_requests)
        offsets = [srv.logfile.stat().st_size for srv in servers]
        before = [Snapshot.take(srv, pg) for srv in servers]
        timed = sequential_gets(servers, fx, args.requests, args.block)
        after = [Snapshot.take(srv, pg) for srv in servers]
        time.sleep(0.5)  # the last access lines are written after their answers
        server_ms = [
            sorted(srv.access_ms(CONTACT_ROUTE, offset)[-args.requests :])
            for srv, offset in zip(servers, offsets, strict=True)
        ]
    costs = [
        Cost(label, ms, sms, b.until(a), a.wall - b.wall)
        for label, ms, sms, b, a in zip(labels, timed, server_ms, before, after, strict=True)
    ]

    print(
        f"\nA · per-request cost: GET {API}/contacts/{{id}} as the BU-level user, {args.requests:,} "
        f"sequential requests after {args.warmup_requests:,} warm-up,\n    "
        f"{len(fx.contacts):,} readable contacts in turn; two servers of 1 API process each, "
        f"one keep-alive connection to each,\n    answering in turn, {args.block} "
        f"request{'s' if args.block > 1 else ''} each"
    )
    head = (
        f"{'':<21} {'client ms: p50':>14} {'p95':>6} {'p99':>6}  {'server ms: p50':>14} "
        f"{'p95':>6} {'p99':>6}  {'CPU ms: API':>11} {'PG':>5}"
    )
    print(head)
    print("-" * len(head))
    for c in costs:
        print(
            f"{c.label:<21} {pct(c.ms, 0.5):14.2f} {pct(c.ms, 0.95):6.2f} {pct(c.ms, 0.99):6.2f}  "
            f"{pct(c.server, 0.5):14.2f} {pct(c.server, 0.95):6.2f} {pct(c.server, 0.99):6.2f}  "
            f"{c.cpu_ms(c.cpu.server):11.2f} {c.cpu_ms(c.cpu.pg):5.2f}"
        )
    on, off = costs

    def ratio(q: float, side: str) -> str:
        return f"{pct(getattr(on, side), q) / pct(getattr(off, side), q):.2f}"

    rest = max(0.0, on.cpu.box - on.cpu.pg_all - sum(c.cpu.server for c in costs))
    print(
        f"ratio cache on / off: client p50 {ratio(0.5, 'ms')}, p95 {ratio(0.95, 'ms')}; server "
        f"p50 {ratio(0.5, 'server')}, p95 {ratio(0.95, 'server')}; CPU per request: API "
        f"{on.cpu_ms(on.cpu.server) / off.cpu_ms(off.cpu.server):.2f}, PostgreSQL "
        f"{on.cpu_ms(on.cpu.pg) / max(off.cpu_ms(off.cpu.pg), 1e-9):.2f}"
    )
    print(
        "client-side latency includes the client and the loopback, so it bounds from above "
        "the server's time\nto answer; server ms: each request's time in the server, from its "
        "access log (the servers log at\nINFO here): from the request's arrival in the app "
        "until the app is done with it, which includes\nwork after the answer's last byte "
        "(metrics, clean-up), so its tail can pass the client's; CPU ms:\nper request, of the "
        f"API process and of its PostgreSQL backends; meanwhile {rest:.2f} of {os.cpu_count()} "
        "cores\nwere busy with other work (it slows every figure)"
    )
    server95, client95 = pct(on.server, 0.95), pct(on.ms, 0.95)
    verdict = "PASS" if server95 < GET_P95_MS else "MISS"
    return [
        f"A: server time of a GET of one contact < {GET_P95_MS:.0f} ms at p95: {verdict} "
        f"({server95:.2f} ms; client-side {client95:.2f} ms)"
    ]


# ------------------------------------------------------------------------------ B, C: locust


@dataclass
class Run:
    """One locust run at a constant rate: the samples of its measured window."""

    rate: float
    seconds: float
    users: int
    ms: list[float] = field(default_factory=list)  # sorted, every request
    by_name: dict[str, list[float]] = field(default_factory=dict)
    errors: int = 0
    errors_by_name: dict[str, int] = field(default_factory=dict)
    error_kinds: dict[str, int] = field(default_factory=dict)  # message -> count
    cpu: Cpu = field(default_factory=Cpu)
    server: list[tuple[float, float]] = field(default_factory=list)
    saturated: bool = False  # locust said its own CPU was over 90 %
    pg_states: dict[str, int] = field(default_factory=dict)  # at the window's end
    sessions: int = 0  # PostgreSQL connections opened on the database in the window
    gc: dict[str, tuple[float, float]] = field(default_factory=dict)  # in the window

    def gc_line(self) -> str:
        """The API processes' garbage-collector pauses in the window, by generation."""
        parts = [
            f"generation {gen}: {n:,.0f} × (mean {secs / n * 1000:.2f} ms)"
            for gen, (n, secs) in sorted(self.gc.items())
            if n
        ]
        return "garbage collector pauses, all API processes: " + ("; ".join(parts) or "none")

    @property
    def achieved(self) -> float:
        """Requests per second completed in the window."""
        return len(self.ms) / self.seconds

    def q(self, q: float) -> float:
        """A client-side quantile in ms."""
        return pct(self.ms, q) if self.ms else math.nan

    def held(self, p99_ms: float) -> bool:
        """p99 under ``p99_ms``, no error and at least 95 % of the rate achieved."""
        return self.q(0.99) < p99_ms and self.errors == 0 and self.achieved >= 0.95 * self.rate


def run_locust(
    fx: Fixture,
    srv: Server,
    pg: PgProbe,
    args: argparse.Namespace,
    tmp: Path,
    rate: float,
    seconds: int,
) -> Run:
    """Locust at ``rate`` requests/s for ``--warmup-seconds`` + ``seconds``; only the last
    ``seconds`` count."""
    users = max(1, math.ceil(rate / args.user_rate))
    tag = f"{int(rate)}-{time.monotonic_ns()}"
    samples = tmp / f"samples-{tag}.tsv"
    config = tmp / f"locust-{tag}.json"
    config.write_text(
        json.dumps(
            {
                "token": fx.token,
                "contacts": fx.contacts,
                "events": fx.events,
                "per_user_rate": rate / users,
                "page_size": PAGE_SIZE,
                "pages_deep": PAGES_DEEP,
                "weights": MIX,
                "samples": str(samples),
                "timeout": args.timeout,
            }
        )
    )
    warm = args.warmup_seconds
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"]
    # users start over the first half of the warm-up: the rate ramps up, no burst at once
    spawn = users / max(1.0, warm / 2)
    cmd += ["--host", srv.base, "--users", str(users), "--spawn-rate", f"{spawn:g}"]
    # 2 s past the window: the last snapshot is taken while locust still runs at full rate
    cmd += ["--run-time", f"{warm + seconds + 2}s", "--stop-timeout", str(args.timeout + 5)]
    cmd += ["--only-summary"]
    cmd += ["--loglevel", "WARNING", "--exit-code-on-error", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    env["GATHERLY_LOAD_CONFIG"] = str(config)
    run = Run(rate=rate, seconds=seconds, users=users)
    with Child(f"locust at {rate:g}/s", cmd, env=env, logfile=tmp / f"locust-{tag}.log") as loc:
        marker = Path(f"{samples}.start")
        deadline = time.monotonic() + 60
        while not marker.exists():
            if loc.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"locust did not start:\n{loc.log_tail()}")
            time.sleep(0.1)
        start = float(marker.read_text())
        time.sleep(max(0.0, start + warm - time.time()))
        before = Snapshot.take(srv, pg, loc)
        time.sleep(max(0.0, start + warm + seconds - time.time()))
        after = Snapshot.take(srv, pg, loc)
        try:
            loc.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"locust did not stop:\n{loc.log_tail()}") from None
        if not samples.exists():
            raise RuntimeError(f"locust wrote no samples:\n{loc.log_tail()}")
        run.saturated = "CPU usage above" in loc.logfile.read_text(errors="replace")
    run.cpu = before.until(after)
    run.pg_states = after.pg_states
    run.sessions = after.sessions - before.sessions
    run.server = hist_diff(before.latency, after.latency)
    run.gc = {
        gen: (n - before.gc.get(gen, (0.0, 0.0))[0], secs - before.gc.get(gen, (0.0, 0.0))[1])
        for gen, (n, secs) in after.gc.items()
    }
    lo, hi = start + warm, start + warm + seconds
    for line in samples.read_text().splitlines():
        t, ms, name, error = line.split("\t", 3)
        if not lo <= float(t) < hi:
            continue
        run.ms.append(float(ms))
        run.by_name.setdefault(name, []).append(float(ms))
        if error:
            run.errors += 1
            run.errors_by_name[name] = run.errors_by_name.get(name, 0) + 1
            run.error_kinds[error] = run.error_kinds.get(error, 0) + 1
    run.ms.sort()
    for v in run.by_name.values():
        v.sort()
    return run


def fmt_server(q: float, buckets: list[tuple[float, float]]) -> str:
    """A server-side quantile from the histogram, or n/a when a scrape failed."""
    found = hist_quantile(q, buckets)
    return "n/a" if found is None else f"≈ {found:.1f}"


def print_errors(run: Run, most: int = 3) -> None:
    """The most frequent error messages of a run and, after errors, the state of the API's
    database connections (all "idle in transaction" while the API does nothing: requests
    holding a connection wait for a thread the requests waiting for a connection hold)."""
    for message, n in sorted(run.error_kinds.items(), key=lambda kv: -kv[1])[:most]:
        print(f"  {n:,} × {message}")
    if run.errors:
        states = ", ".join(f"{n} {state}" for state, n in sorted(run.pg_states.items()))
        print(f"  the API's PostgreSQL connections at the window's end: {states or 'none'}")


def fmt_q(ms: Sequence[float]) -> str:
    """``p50 p95 p99 max`` columns."""
    return " ".join(f"{pct(ms, q):7.1f}" for q in (0.5, 0.95, 0.99, 1.0))


def phase_b(
    fx: Fixture, srv: Server, pg: PgProbe, args: argparse.Namespace, tmp: Path
) -> list[str]:
    """L1: the constant rate for ``--duration``; returns the verdict lines."""
    log(f"B: {args.rate:g} requests/s for {args.duration} s (+{args.warmup_seconds} s warm-up)")
    run = run_locust(fx, srv, pg, args, tmp, args.rate, args.duration)
    print(
        f"\nB · L1: {args.rate:g} requests/s for {args.duration} s, 2 API processes (principal "
        f"cache on), locust {run.users} users at {args.rate / run.users:g} request/s each "
        "(Poisson arrivals);\n"
        f"    mix {', '.join(f'{k} {v}' for k, v in MIX.items())} (lists followed up to "
        f"{PAGES_DEEP} pages of {PAGE_SIZE}); the first {args.warmup_seconds} s not counted"
    )
    head = f"{'request':<24} {'requests':>8} {'errors':>6}  {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
    print(head + "   ms, client-side")
    print("-" * len(head))
    for name in sorted(run.by_name):
        ms = run.by_name[name]
        print(f"{name:<24} {len(ms):8,} {run.errors_by_name.get(name, 0):6}  {fmt_q(ms)}")
    print(f"{'all':<24} {len(run.ms):8,} {run.errors:6}  {fmt_q(run.ms)}")
    print_errors(run)
    server = ", ".join(f"p{round(q * 100)} {fmt_server(q, run.server)}" for q in (0.5, 0.95, 0.99))
    print(
        f"achieved {run.achieved:.1f} requests/s of {args.rate:g} · server-side (the product's "
        f"histogram, all API routes), ms: {server}"
    )
    print(run.cpu.line() + (" · locust reported its CPU over 90 %" if run.saturated else ""))
    print(run.gc_line())
    print(
        f"PostgreSQL connections opened in the window: {run.sessions:,} (by every client of "
        "the database; the API's pool opens one for each checkout past its pool_size)"
    )
    p99 = run.q(0.99)
    achieved = run.achieved >= 0.95 * args.rate
    return [
        f"B: p99 < {L1_P99_MS:.0f} ms at {args.rate:g} requests/s: "
        f"{'PASS' if p99 < L1_P99_MS else 'MISS'} ({p99:.1f} ms)",
        f"B: no errors: {'PASS' if run.errors == 0 else 'MISS'} ({run.errors} of {len(run.ms):,})",
        f"B: rate achieved: {'PASS' if achieved else 'MISS'} ({run.achieved:.1f} requests/s)",
    ]


def phase_c(
    fx: Fixture, srv: Server, pg: PgProbe, args: argparse.Namespace, tmp: Path
) -> list[str]:
    """Capacity: step the rate up until a step is not held; returns the verdict line."""
    print(
        f"\nC · capacity: the same mix, +{args.rate_step:g} requests/s every "
        f"{args.step_seconds} s (+{args.warmup_seconds} s warm-up each) until p99 ≥ "
        f"{CAPACITY_P99_MS:.0f} ms, an error, or under 95 % of the rate achieved"
    )
    head = (
        f"{'rate':>6} {'achieved':>8} {'errors':>6}  {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}"
        f"  {'box':>5} {'API':>5} {'PG':>5} {'locust':>6} {'rest':>5} {'conns':>6}  held"
    )
    print(head)
    print("-" * len(head))
    best = 0.0
    rate = args.rate_step
    while rate <= args.max_rate:
        log(f"C: {rate:g} requests/s for {args.step_seconds} s")
        run = run_locust(fx, srv, pg, args, tmp, rate, args.step_seconds)
        ok = run.held(CAPACITY_P99_MS)
        c = run.cpu
        print(
            f"{rate:6g} {run.achieved:8.1f} {run.errors:6}  {fmt_q(run.ms)}  {c.box:5.2f} "
            f"{c.server:5.2f} {c.pg_all:5.2f} {c.locust:6.2f} {c.rest:5.2f} {run.sessions:6,}  "
            f"{'yes' if ok else 'no'}{' (locust CPU > 90 %)' if run.saturated else ''}",
            flush=True,
        )
        if not ok:
            print_errors(run)
            break
        best = rate
        rate += args.rate_step
    print(
        f"ms client-side; CPU in cores of {os.cpu_count()}: box = API + PG (all of PostgreSQL) "
        "+ locust + the rest (anything else running);\nconns: PostgreSQL connections opened "
        "in the step (by every client of the database)"
    )
    if best == 0:
        return [
            f"C: no step held p99 < {CAPACITY_P99_MS:.0f} ms (the first was {args.rate_step:g}/s)"
        ]
    more = " (the highest step tried)" if best + args.rate_step > args.max_rate else ""
    return [f"C: the most held at p99 < {CAPACITY_P99_MS:.0f} ms: {best:g} requests/s{more}"]


# ------------------------------------------------------------------------------ main


def _stop_on_signal(signum: int, _frame: Any) -> None:
    log(f"{signal.Signals(signum).name}: stopping the servers and locust")
    raise SystemExit(128 + signum)  # unwinds through the context managers: children stop


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, prepare the data, run the phases, report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    access.data_arguments(
        ap, "contacts of the access benchmark's data (e.g. 50000 for a quick run; cached)"
    )
    ap.add_argument("--events", type=int, default=2000, help="marketing events to add once")
    ap.add_argument("--phases", default="A,B,C", help="which phases to run, e.g. A or B,C")
    ap.add_argument("--requests", type=int, default=2000, help="A: timed sequential GETs")
    ap.add_argument("--warmup-requests", type=int, default=200, help="A: untimed GETs first")
    ap.add_argument(
        "--block",
        type=int,
        default=50,
        help="A: the servers take turns every this many requests (1: every request, where "
        "each request finds the processor's caches filled by the other server)",
    )
    ap.add_argument("--rate", type=float, default=200.0, help="B: requests per second")
    ap.add_argument("--duration", type=int, default=600, help="B: measured seconds")
    ap.add_argument("--step-seconds", type=int, default=60, help="C: measured seconds a step")
    ap.add_argument("--rate-step", type=float, default=100.0, help="C: requests/s added a step")
    ap.add_argument("--max-rate", type=float, default=3000.0, help="C: the last step at most")
    ap.add_argument(
        "--warmup-seconds",
        type=int,
        default=10,
        help="B, C: seconds not counted at the start (users start over the first half)",
    )
    ap.add_argument(
        "--timeout",
        type=int,
        default=10,
        help="B, C: seconds after which an unanswered request counts as an error",
    )
    ap.add_argument(
        "--user-rate",
        type=float,
        default=1.0,
        help="B, C: requests/s of one locust user (users = rate / this)",
    )
    args = ap.parse_args(argv)
    phases = {p.strip().upper() for p in args.phases.split(",") if p.strip()}
    if not phases or phases - {"A", "B", "C"}:
        ap.error("--phases takes A, B and C, comma-separated")
    # also when started in the background, where a shell leaves SIGINT ignored
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _stop_on_signal)

    fx = prepare_fixture(args)
    if fx is None:
        return 1
    print(
        f"L1 load · PostgreSQL, {args.contacts:,} contacts, {args.events:,} events, seed "
        f"{args.seed} ({fx.status}) · {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f} at the start"
    )
    v = fx.viewer
    print(
        f"viewer: {v.label} (user {v.user}, {v.role}, BU {v.bu}) reads "
        f"{fx.readable_contacts:,} contacts and {fx.readable_events:,} events"
    )
    verdicts: list[str] = []
    upgrade = True  # the first server brings the build's schema to this release's
    pg = PgProbe(args.pg_url)
    with contextlib.ExitStack() as stack:
        stack.callback(pg.engine.dispose)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gatherly-load-")))
        if "A" in phases:
            verdicts += phase_a(fx, pg, args, tmp, upgrade)
            upgrade = False
        # B and C each on a fresh server: C's first steps do not pay for B's trouble
        for phase, run in (("B", phase_b), ("C", phase_c)):
            if phase in phases:
                log(f"{phase}: starting 2 API processes")
                with Server(fx, tmp, workers=2, cache=None, upgrade=upgrade) as srv:
                    upgrade = False
                    verify(srv, fx)
                    verdicts += run(fx, srv, pg, args, tmp)
    print("\ntargets")
    for line in verdicts:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
