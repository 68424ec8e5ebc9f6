"""The concurrency soak (issue 20, R3): the production shape under load, with workers killed.

Two API processes (``gatherly serve --workers 2 --no-worker``) and two worker processes
(``gatherly worker --concurrency 2``, the schedule on in both) on PostgreSQL and Redis, while
a driver in this process runs, at once and over real HTTP:

  teams     changes webinars in the Graph emulator (registrations, cancellations, attendance)
            and asks for syncs (a full sync, or *Sync now* on one webinar), with a share of
            the emulator's Graph answers faulty (429, 503, 504, dropped, slow, expired token)
  contacts  CSV imports and creations of people from a shared pool of emails (the sync's
            new registrants come from the same pool), by users who may read every contact,
            and edits by anyone
  merges    a deliberate twin of a contact (``allow_duplicate``), merged at once, into the
            original or the original into it
  org       a marketer (owner of contacts, events, a list and segments) moved between two
            business units with their records, a business unit re-parented, contacts assigned
            to other owners
  segments  a segment's criteria edited, refreshes asked for, members read, a list's members
            added and removed
  email     sends of a ready message to fixed lists through a real SMTP server
  killer    SIGKILL at the interval to the busiest worker (one holding connections to Graph
            and to the SMTP server: in the middle of a sync and a send), and a replacement

Afterwards it waits (bounded) for the work to drain — nothing queued on Redis, no sync
running, every send finished, the change outbox empty — and checks the invariants: no two
contacts share a match key, nobody got a message twice and every send reached its audience,
every event's counts equal a recount from its rows, every dynamic segment's stored members
equal its criteria evaluated now, no job lost (every run the driver started and every send
reached a final state), no task lock left held by a killed worker, and no API request
answered 5xx.

``tests/test_concurrency.py`` runs it short (one kill) in the suite; ``bench/soak.py`` long.
The Graph faults stay on while the work drains: a worker cannot tell a drain from any other
moment, and the retries are what is under test (a run the faults defeat ends *partial*, a
final state).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact import imports
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core import migrate
from gatherly.core.changes import DataChange
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, utcnow
from gatherly.email.models import EmailDelivery, EmailSend
from gatherly.event import participation
from gatherly.event.models import MarketingEvent
from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
from gatherly.jobs.queue import Jobs
from gatherly.org import defaults
from gatherly.org import service as org_service
from gatherly.org.models import User
from gatherly.segment import service as segment_service
from gatherly.segment.models import DYNAMIC, Segment, SegmentMember
from gatherly.teams.models import RUN_RUNNING, SyncRun, TeamsWebinar
from tests import factories as f
from tests.api.conftest import Org, build_org
from tests.api.helpers import API
from tests.api.test_email_sends import SENDS, _ready_message
from tests.cli.helpers import gatherly_executable, subprocess_env
from tests.conftest import postgres_schema  # and the suite's secret key, in the environment
from tests.loopback import serve_asgi
from tests.smtp_sink import Sink, free_port, smtp_sink
from tests.teams.conftest import SAMPLE, Connected, Tenant, connect
from tests.workers import stop, worker_process

FAULT_KINDS = ["429", "503", "504", "drop", "slow", "expired_token"]  # all retriable
POOL_DOMAIN = "pool.soak.example"  # people the imports, creations and the sync share
MAIL_DOMAIN = "mail.soak.example"  # the mailing lists' people: never merged or moved
COUNTRIES = ["DE", "FR", "US", "JP"]
FINAL_RUN_STATES = {"succeeded", "partial", "failed", "interrupted"}
MESSAGE_ID = re.compile(r"\.d(\d+)@")  # delivery.py names each Message-ID after its delivery


@dataclass(frozen=True)
class Params:
    """What a soak does, and for how long."""

    duration: float = 30.0  # seconds of driving
    kill_every: float = 60.0  # seconds between two SIGKILLs
    first_kill: float | None = None  # seconds into the drive of the first (default kill_every)
    fault_rate: float = 0.2  # of the emulator's Graph answers
    people: int = 200  # the pool of emails
    mail_lists: int = 3
    list_size: int = 40  # people per mailing list: a send's audience
    send_every: float = 4.0  # seconds between two sends
    drain_timeout: float = 60.0
    seed: int = 20


@dataclass
class Verdict:
    """One invariant's result."""

    name: str
    ok: bool
    detail: str


@dataclass
class Outcome:
    """What the driver did, what was killed, and each invariant's verdict."""

    counts: Counter[str] = field(default_factory=Counter)
    kills: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    logs: Path | None = None

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts)

    def report(self) -> str:
        """The counts, kills, timings and verdicts, for a person to read."""
        lines = ["what the driver did (activity.action outcome: times):"]
        lines += [f"  {key}: {n}" for key, n in sorted(self.counts.items())]
        lines.append(f"kills ({len(self.kills)}):")
        lines += [f"  {kill}" for kill in self.kills]
        lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        lines.append("invariants:")
        for v in self.verdicts:
            lines.append(f"  [{'ok' if v.ok else 'FAILED'}] {v.name}: {v.detail}")
        if self.logs is not None:
            lines.append(f"process logs: {self.logs}")
        return "\n".join(lines)


def redis_answers(url: str) -> bool:
    """Whether a Redis server accepts connections at ``url``."""
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False


# ------------------------------------------------------------------ processes


def _copy_lines(stream: IO[str], path: Path) -> None:
    """A worker's output into its log file (a pipe nobody reads would stop the worker)."""
    with path.open("a") as out:
        for line in stream:
            out.write(line)
            out.flush()


@contextmanager
def _worker(settings: Settings, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    """``gatherly worker --concurrency 2`` with the schedule, its output in ``log``."""
    args = ("--concurrency", "2", "--grace", "5")
    with worker_process(settings, *args, schedule=True, env_extra=env) as proc:
        assert proc.stdout is not None
        reader = threading.Thread(target=_copy_lines, args=(proc.stdout, log), daemon=True)
        reader.start()
        try:
            yield proc
        finally:
            stop(proc, signal.SIGTERM)  # before worker_process closes the pipe being read
            reader.join(timeout=10)


@contextmanager
def _api_server(env: dict[str, str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``gatherly serve --workers 2 --no-worker`` on ``port``; SIGTERM at the end."""
    command = [gatherly_executable(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "2", "--no-worker", "--no-upgrade", "--grace", "5"]
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own console script
            command, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        try:
            yield proc
        finally:
            stop(proc, signal.SIGTERM, timeout=30)


def _wait_ready(proc: subprocess.Popen[bytes], base_url: str, log: Path, seconds: float) -> None:
    """Until ``/readyz`` answers 200 (database, schema and queue reachable)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gatherly serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gatherly serve was not ready in {seconds}s:\n{log.read_text()}")


class Workers:
    """The worker processes by slot: SIGKILL one, start its replacement."""

    def __init__(self, stack: ExitStack, settings: Settings, env: dict[str, str], logs: Path):
        self.stack, self.settings, self.env, self.logs = stack, settings, env, logs
        self.procs: dict[int, subprocess.Popen[str]] = {}
        self.started = itertools.count(1)

    def start(self, slot: int) -> None:
        log = self.logs / f"worker-{slot}-{next(self.started)}.log"
        self.procs[slot] = self.stack.enter_context(_worker(self.settings, self.env, log))

    def kill(self, slot: int) -> int:
        proc = self.procs[slot]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        return proc.pid

    def alive(self) -> list[int]:
        return [slot for slot, proc in self.procs.items() if proc.poll() is None]


# ------------------------------------------------------------------ the installation


@dataclass
class Setup:
    """The installation the driver works on, as set up before it starts."""

    settings: Settings
    factory: sessionmaker[Session]
    org: Org
    tenant: Tenant
    sink: Sink
    base_url: str
    graph_port: int
    webinars: dict[str, int]  # Graph id -> Gatherly webinar id, of the published synced ones
    segments: dict[str, int]  # name -> id
    topic_list: int  # the list the "listed" segment uses
    mail_lists: dict[int, set[int]]  # list id -> its members (never changed)
    message_id: int = 0


def _import(db: Session, org: Org, who: str, rows: list[dict[str, str]]) -> list[int]:
    """People imported as ``who`` through the matching service; their contact ids."""
    report = imports.import_csv(
        db=db,
        principal=f.principal(db, org.users[who]),
        kind=contact_service.CONTACT,
        text=f.csv_text(rows),
    )
    return [r.record_id for r in report.rows if r.record_id is not None]


def _person(rng: random.Random, index: int) -> dict[str, str]:
    return {
        "email": f"p{index}@{POOL_DOMAIN}",
        "first_name": f"Pat{index}",
        "last_name": rng.choice(["Meyer", "Sato", "Dubois", "Smith"]),
        "country": rng.choice(COUNTRIES),
    }


def _prepare(db: Session, org: Org, params: Params, rng: random.Random) -> dict[str, Any]:
    """Half the pool, the mailing lists, the segments and their list (committed)."""
    _import(db, org, "marketer", [_person(rng, i) for i in range(0, params.people, 2)])
    mail: dict[int, set[int]] = {}
    for n in range(params.mail_lists):
        people = [
            {"email": f"m{n}-{i}@{MAIL_DOMAIN}", "first_name": f"Mo{i}", "last_name": "Mail"}
            for i in range(params.list_size)
        ]
        ids = _import(db, org, "orgadmin", people)
        admin = f.principal(db, org.users["orgadmin"])
        made = segment_service.create_list(db=db, principal=admin, name=f"Mailing {n}")
        segment_service.add_to_list(db=db, principal=admin, list_id=made.id, contact_ids=ids)
        mail[made.id] = set(ids)
    marketer = f.principal(db, org.users["marketer"])
    topic = segment_service.create_list(db=db, principal=marketer, name="Topic list")
    criteria = {
        "countries": ("marketer", {"contact": {"country": {"in": ["DE", "FR"]}}}),
        "registered": ("eu_marketer", {"participation": "registered"}),
        "attended": ("manager", {"participation": "attended", "min_minutes": 1}),
        "cancelled": ("admin", {"participation": "cancelled"}),
        "listed": (
            "marketer",
            {"all": [{"list": topic.id}, {"not": {"contact": {"country": "US"}}}]},
        ),
    }
    segments = {}
    for name, (who, tree) in criteria.items():
        segments[name] = segment_service.create_segment(
            db=db, principal=f.principal(db, org.users[who]), name=name, criteria=tree
        ).id
    db.commit()
    return {"mail_lists": mail, "segments": segments, "topic_list": topic.id}


# ------------------------------------------------------------------ the driver


class Driver:
    """The activities, each a thread over real HTTP; what they did is counted."""

    def __init__(self, setup: Setup, params: Params, outcome: Outcome, workers: Workers):
        self.setup, self.params, self.outcome, self.workers = setup, params, outcome, workers
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.server_errors: list[str] = []
        self.runs: list[int] = []
        self.sends: dict[int, int] = {}  # send id -> list id
        self.twins: dict[int, int] = {}  # twin id -> the original it must be merged with
        self.started = time.monotonic()
        self._local = threading.local()  # each activity's own seeded random stream
        # In turn, so that a short run does each.
        self.org_kinds = itertools.cycle(["move-user", "assign", "reparent-bu", "assign"])
        self.segment_kinds = itertools.cycle(
            ["edit", "refresh", "list-add", "members", "edit", "list-remove"]
        )
        with setup.factory() as db:
            known = db.scalars(select(Contact.id).where(Contact.email.like(f"%@{POOL_DOMAIN}")))
            self.known: set[int] = set(known)

    # ------------------------------------------------------------ plumbing

    def count(self, key: str) -> None:
        with self.lock:
            self.outcome.counts[key] += 1

    def call(
        self,
        http: httpx.Client,
        action: str,
        who: str,
        method: str,
        path: str,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """One API request as ``who``, counted by its answer; 5xx and transport errors noted."""
        headers = self.setup.org.headers[who] | kwargs.pop("headers", {})
        try:
            response = http.request(method, path, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            self.count(f"{action} {type(exc).__name__}")
            with self.lock:
                self.server_errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        self.count(f"{action} {response.status_code}")
        if response.status_code >= 500:
            with self.lock:
                self.server_errors.append(
                    f"{method} {path}: {response.status_code} {response.text[:300]}"
                )
        return response

    def sample(self, k: int = 1) -> list[int]:
        with self.lock:
            known = sorted(self.known)
        return self.rng().sample(known, min(k, len(known)))

    def rng(self) -> random.Random:
        local = getattr(self._local, "rng", None)
        if local is None:
            local = self._local.rng = random.Random(
                f"{self.params.seed}-{threading.current_thread().name}"
            )
        return local

    def run(self) -> None:
        """Every activity at once for ``duration`` seconds; then each finishes its step."""
        activities: dict[str, tuple[Callable[[httpx.Client], None], float]] = {
            "teams": (self.teams, 1.5),
            "contacts": (self.contacts, 0.4),
            "merges": (self.merges, 1.2),
            "org": (self.org, 2.5),
            "segments": (self.segments, 1.0),
            "email": (self.email, self.params.send_every),
        }
        threads = [
            threading.Thread(target=self._loop, args=(name, step, pause), name=name)
            for name, (step, pause) in activities.items()
        ]
        threads.append(threading.Thread(target=self.killer, name="killer"))
        for thread in threads:
            thread.start()
        self.stop.wait(self.params.duration)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=120)
        with httpx.Client(base_url=self.setup.base_url, timeout=30) as http:
            self.merge_twins(http, until=time.monotonic() + 20)

    def _loop(self, name: str, step: Callable[[httpx.Client], None], pause: float) -> None:
        # No keep-alive: every request a new connection, which the kernel hands to either
        # API process.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.setup.base_url, timeout=60, limits=limits) as http:
            while not self.stop.is_set():
                try:
                    step(http)
                except Exception as exc:  # a driver bug must not pass for a product bug
                    self.count(f"{name}.driver-error {type(exc).__name__}")
                    with self.lock:
                        self.server_errors.append(f"driver {name}: {type(exc).__name__}: {exc}")
                self.stop.wait(pause * (0.5 + self.rng().random()))

    # ------------------------------------------------------------ teams

    def teams(self, http: httpx.Client) -> None:
        rng, tenant = self.rng(), self.setup.tenant
        graph_id = rng.choice(sorted(self.setup.webinars))
        webinar = next(w for w in tenant.state.data["webinars"] if w["id"] == graph_id)
        path = f"webinars/{quote(graph_id, safe='')}"
        registered = [
            r for r in list(webinar.get("registrations", [])) if r["status"] == "registered"
        ]
        for _ in range(rng.randint(1, 3)):
            change = rng.choice(["register", "register", "cancel", "attend"])
            if change == "register" or not registered:
                person = _person(rng, rng.randrange(self.params.people))
                body = {
                    "firstName": person["first_name"],
                    "lastName": person["last_name"],
                    "email": person["email"],
                }
                tenant.control(f"{path}/registrations", body)
            elif change == "cancel":
                reg = rng.choice(registered)
                tenant.control(f"{path}/registrations/{reg['id']}/cancel")
            else:
                reg = rng.choice(registered)
                sessions = [s for s in webinar["sessions"] if s.get("attendanceReports")]
                if not sessions:
                    continue
                session = rng.choice(sessions)
                report = session["attendanceReports"][0]
                start = datetime.fromisoformat(
                    report["meetingStartDateTime"].replace("Z", "+00:00")
                )
                join = start + timedelta(minutes=rng.randint(0, 30))
                body = {
                    "reportId": report["id"],
                    "emailAddress": reg["email"],
                    "registrationId": reg["id"],
                    "joinDateTime": join.isoformat().replace("+00:00", "Z"),
                    "leaveDateTime": (join + timedelta(minutes=rng.randint(1, 20)))
                    .isoformat()
                    .replace("+00:00", "Z"),
                }
                tenant.control(f"{path}/sessions/{session['id']}/attendance", body)
            self.count(f"teams.emulator-{change}")
        body = {"webinar_id": self.setup.webinars[graph_id]} if rng.random() < 0.7 else {}
        action = "sync-now" if body else "full-sync"
        response = self.call(
            http, f"teams.{action}", "admin", "POST", f"{API}/integrations/teams/sync", json=body
        )
        if response is not None and response.status_code == 202:
            with self.lock:
                self.runs.append(int(response.json()["id"]))

    # ------------------------------------------------------------ contacts

    def contacts(self, http: httpx.Client) -> None:
        rng = self.rng()
        kind = rng.choices(["import", "create", "edit"], weights=[4, 2, 4])[0]
        # People arrive through users who may read every contact: a match the importer may
        # not read is never named and a second record is made, by design (docs/matching.md),
        # so only such users' intakes make a duplicate a bug. Anyone edits.
        who = rng.choice(
            ["admin", "orgadmin"] if kind != "edit" else ["marketer", "manager", "admin"]
        )
        if kind == "import":
            rows = [
                _person(rng, rng.randrange(self.params.people)) for _ in range(rng.randint(2, 8))
            ]
            response = self.call(
                http,
                "contacts.import",
                who,
                "POST",
                f"{API}/contacts/import",
                content=f.csv_text(rows),
                headers={"Content-Type": "text/csv"},
            )
            if response is not None and response.status_code == 200:
                ids = {r["record_id"] for r in response.json()["rows"] if r["record_id"]}
                with self.lock:
                    self.known |= ids
        elif kind == "create":
            person = _person(rng, rng.randrange(self.params.people))
            response = self.call(
                http, "contacts.create", who, "POST", f"{API}/contacts", json=person
            )
            if response is not None and response.status_code == 201:
                with self.lock:
                    self.known.add(int(response.json()["id"]))
        else:
            for contact_id in self.sample():
                body = {"country": rng.choice(COUNTRIES), "company": f"Co {rng.randrange(100)}"}
                self.call(
                    http,
                    "contacts.edit",
                    who,
                    "PATCH",
                    f"{API}/contacts/{contact_id}",
                    json=body,
                )

    # ------------------------------------------------------------ merges

    def merges(self, http: httpx.Client) -> None:
        rng = self.rng()
        for original in self.sample():
            found = self.call(http, "merges.read", "admin", "GET", f"{API}/contacts/{original}")
            if found is None or found.status_code != 200:
                continue
            twin = {"email": found.json()["email"], "first_name": "Twin", "last_name": "Soak"}
            made = self.call(
                http,
                "merges.twin",
                "admin",
                "POST",
                f"{API}/contacts",
                params={"allow_duplicate": "true"},
                json=twin,
            )
            if made is None or made.status_code != 201:
                continue
            twin_id = int(made.json()["id"])
            with self.lock:
                self.twins[twin_id] = original
            if rng.random() < 0.5:  # keep the twin: the original and its key go
                self._merge(http, master=twin_id, duplicate=original)
            else:
                self._merge(http, master=original, duplicate=twin_id)

    def _merge(self, http: httpx.Client, *, master: int, duplicate: int) -> bool:
        body = {"record_type": "contact", "master_id": master, "duplicate_id": duplicate}
        response = self.call(
            http, "merges.merge", "admin", "POST", f"{API}/duplicates/merge", json=body
        )
        if response is None or response.status_code != 200:
            return False
        with self.lock:
            self.twins.pop(master, None)
            self.twins.pop(duplicate, None)
            self.known.discard(duplicate)
            self.known.add(master)
        return True

    def merge_twins(self, http: httpx.Client, *, until: float) -> None:
        """Twins whose merge did not go through are merged now: every twin is one person."""
        while self.twins and time.monotonic() < until:
            for twin, original in list(self.twins.items()):
                self._merge(http, master=original, duplicate=twin)
            time.sleep(0.5)

    # ------------------------------------------------------------ org

    def org(self, http: httpx.Client) -> None:
        rng, org = self.rng(), self.setup.org
        kind = next(self.org_kinds)
        if kind == "move-user":  # between Sales and Sales EU, their records with them
            marketer = org.users["marketer"].id
            with self.setup.factory() as db:
                now = db.scalar(select(User.business_unit_id).where(User.id == marketer))
            to = org.sales_eu.id if now == org.sales.id else org.sales.id
            path, body = f"{API}/users/{marketer}", {"business_unit_id": to}
        elif kind == "reparent-bu":  # Sales EU under Sales or under Support
            parent = rng.choice([org.sales.id, org.support.id])
            path, body = f"{API}/business-units/{org.sales_eu.id}", {"parent_id": parent}
        else:
            owner = rng.choice(["marketer", "eu_marketer", "manager", "assistant", "orgadmin"])
            ref = {"type": "user", "id": org.users[owner].id}
            path, body = f"{API}/contacts/{self.sample()[0]}/assign", {"owner": ref}
        self.call(
            http, f"org.{kind}", "admin", "POST" if kind == "assign" else "PATCH", path, json=body
        )

    # ------------------------------------------------------------ segments

    def segments(self, http: httpx.Client) -> None:
        rng, segments = self.rng(), self.setup.segments
        kind = next(self.segment_kinds)
        method, body = "POST", None
        segment = f"{API}/segments/{rng.choice(sorted(segments.values()))}"
        if kind == "edit":  # the countries segment's criteria
            path, method = f"{API}/segments/{segments['countries']}", "PATCH"
            body = {"criteria": {"contact": {"country": {"in": rng.sample(COUNTRIES, 2)}}}}
        elif kind == "refresh":
            path = f"{segment}/refresh"
        elif kind == "members":
            path, method = f"{segment}/members", "GET"
        else:  # the list the "listed" segment uses
            path = f"{API}/lists/{self.setup.topic_list}/members"
            path += "/remove" if kind == "list-remove" else ""
            body = {"contact_ids": self.sample(rng.randint(1, 5))}
        self.call(http, f"segments.{kind}", "admin", method, path, json=body)

    # ------------------------------------------------------------ email

    def email(self, http: httpx.Client) -> None:
        list_id = self.rng().choice(sorted(self.setup.mail_lists))
        body = {"message_id": self.setup.message_id, "list_ids": [list_id]}
        response = self.call(http, "email.send", "orgadmin", "POST", SENDS, json=body)
        if response is not None and response.status_code == 201:
            with self.lock:
                self.sends[int(response.json()["id"])] = list_id

    # ------------------------------------------------------------ the killer

    def killer(self) -> None:
        """SIGKILL at the interval the worker in the middle of the most (a sync, a send),
        and start its replacement."""
        due = (
            self.params.first_kill if self.params.first_kill is not None else self.params.kill_every
        )
        while not self.stop.wait(max(0.0, self.started + due - time.monotonic())):
            chosen = self._busiest(seconds=5)
            if chosen is None:  # the drive ended meanwhile
                return
            slot, busy = chosen
            pid = self.workers.kill(slot)
            self.workers.start(slot)
            at = time.monotonic() - self.started
            self.outcome.kills.append(
                f"{at:5.1f}s ({utcnow():%H:%M:%S}) worker {slot} (pid {pid}) in the middle of: "
                + (", ".join(busy) or "nothing seen")
            )
            self.count("killer.sigkill")
            due += self.params.kill_every

    def _busiest(self, *, seconds: float) -> tuple[int, list[str]] | None:
        """The worker talking to both Graph and SMTP (a sync and a send at hand), else to
        either after ``seconds``, else any after twice that; and what it was doing."""
        ports = {"a sync (Graph)": self.setup.graph_port, "a send (SMTP)": self.setup.sink.port}
        started = time.monotonic()
        while not self.stop.is_set():
            waited = time.monotonic() - started
            best: tuple[int, list[str]] | None = None
            for slot in self.workers.alive():
                doing = [
                    what
                    for what, port in ports.items()
                    if _talks_to(self.workers.procs[slot].pid, port)
                ]
                if best is None or len(doing) > len(best[1]):
                    best = (slot, doing)
            assert best is not None, "no worker alive"
            if len(best[1]) == 2 or (waited > seconds and best[1]) or waited > 2 * seconds:
                return best
            time.sleep(0.05)
        return None


def _talks_to(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds an established TCP connection to 127.0.0.1:``port``
    (Linux: its socket inodes among /proc/net/tcp's)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
        table = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:  # gone meanwhile
        return False
    for line in table:
        fields = line.split()
        established = fields[3] == "01"
        if established and fields[9] in inodes and int(fields[2].split(":")[1], 16) == port:
            return True
    return False


# ------------------------------------------------------------------ drain and invariants


def _drain(setup: Setup, jobs: Jobs, seconds: float) -> tuple[bool, dict[str, int]]:
    """Wait until nothing is queued or scheduled, no sync runs, every send finished and the
    change outbox is empty — three looks in a row — at most ``seconds``."""
    deadline, quiet = time.monotonic() + seconds, 0
    while True:
        with setup.factory() as db:
            state = {
                "queued tasks": jobs.pending(),
                "scheduled tasks": int(jobs.huey.scheduled_count()),
                "sync runs running": db.scalar(
                    select(func.count()).where(SyncRun.status == RUN_RUNNING)
                )
                or 0,
                "sends unfinished": db.scalar(
                    select(func.count()).where(EmailSend.state.in_(("scheduled", "sending")))
                )
                or 0,
                "outbox changes": db.scalar(select(func.count()).select_from(DataChange)) or 0,
            }
        quiet = quiet + 1 if not any(state.values()) else 0
        if quiet >= 3:
            return True, state
        if time.monotonic() > deadline:
            return False, state
        time.sleep(0.5)


def _unique_contacts(db: Session, exempt: set[int]) -> Verdict:
    """Every email on one contact, which holds its key (``exempt``: the standard
    organisation's contacts, inserted by the factories without going through matching)."""
    email = func.lower(func.trim(Contact.email))
    live = (
        select(email.label("email"), Contact.id)
        .where(Contact.email.is_not(None), Contact.id.not_in(exempt))
        .subquery()
    )
    groups = db.execute(
        select(live.c.email, func.count(), func.min(live.c.id)).group_by(live.c.email)
    ).all()
    twice = [e for e, n, _ in groups if n > 1]
    holders = dict(
        db.execute(
            select(Contact.match_key, Contact.id).where(Contact.match_key.is_not(None))
        ).all()
    )
    # Scoping stays off in the soak: every key is "*|<email>", held by the oldest record.
    wrong = [e for e, _n, oldest in groups if holders.get(f"*|{e}") != oldest]
    if not twice and not wrong:
        return Verdict(
            "no duplicate contact per match key",
            True,
            f"{len(groups)} emails, each on one contact, which holds its key",
        )
    rows = db.execute(
        select(
            Contact.id,
            Contact.email,
            Contact.origin,
            Contact.origin_sync_run_id,
            Contact.match_key,
            Contact.created_at,
            Contact.owner_id,
            Contact.first_name,
        )
        .where(email.in_(twice + wrong))
        .order_by(Contact.email, Contact.id)
    ).all()
    return Verdict(
        "no duplicate contact per match key",
        False,
        f"on two contacts or more: {twice[:10]}; key not on the oldest: {wrong[:10]}; "
        f"the contacts: {[tuple(map(str, r)) for r in rows[:20]]}",
    )


def _emails(db: Session, driver: Driver, sink: Sink, kills: int) -> list[Verdict]:
    with sink.lock:
        caught = [
            (m.rcpt_tos[0], MESSAGE_ID.search(m.message["Message-ID"] or "")) for m in sink.caught
        ]
    unknown = [rcpt for rcpt, found in caught if found is None]
    per_delivery = Counter(int(found.group(1)) for _rcpt, found in caught if found)
    deliveries = {d.id: d for d in db.scalars(select(EmailDelivery))}
    per_person = Counter(
        (deliveries[d].send_id, rcpt)
        for rcpt, found in caught
        if found and (d := int(found.group(1))) in deliveries
    )
    twice = [d for d, n in per_delivery.items() if n > 1] + [
        k for k, n in per_person.items() if n > 1
    ]
    strays = [d for d in per_delivery if d not in deliveries]
    once = Verdict(
        "no message sent twice",
        not twice and not unknown and not strays,
        f"{len(caught)} messages caught, none twice"
        if not (twice or unknown or strays)
        else f"twice: {twice[:10]}; no delivery id: {unknown[:5]}; unknown delivery: {strays[:5]}",
    )
    problems: list[str] = []
    interrupted = 0
    states: Counter[str] = Counter()
    for send_id, list_id in sorted(driver.sends.items()):
        send = db.get(EmailSend, send_id)
        if send is None or send.state != "done":
            problems.append(f"send {send_id}: {send.state if send else 'gone'}")
            continue
        rows = [d for d in deliveries.values() if d.send_id == send_id]
        audience = driver.setup.mail_lists[list_id]
        if {d.contact_id for d in rows} != audience or len(rows) != len(audience):
            problems.append(f"send {send_id}: {len(rows)} deliveries for {len(audience)} people")
        for d in rows:
            states[f"{d.state}/{d.reason}" if d.reason else d.state] += 1
            got = per_delivery.get(d.id, 0)
            if d.state == "failed" and d.reason == "interrupted":
                interrupted += 1
                if got > 1:
                    problems.append(f"delivery {d.id} (interrupted): caught {got} times")
            elif d.state != "sent" or got != 1:
                problems.append(f"delivery {d.id}: {d.state}/{d.reason}, caught {got} times")
    # A killed worker holds at most one message in flight per send it runs (two threads).
    if interrupted > 2 * kills:
        problems.append(f"{interrupted} messages interrupted by {kills} kills")
    sends = len(driver.sends)
    detail = f"{sends} sends, deliveries {dict(states)}"
    return [
        once,
        Verdict(
            "every send reached exactly its audience",
            not problems,
            detail if not problems else "; ".join(problems[:10]),
        ),
    ]


def _event_counts(db: Session) -> Verdict:
    wrong = []
    events = db.scalars(select(MarketingEvent)).all()
    for event in events:
        counts = participation.event_counts(db, event_id=event.id)
        stored = (event.registrant_count, event.cancellation_count, event.attendee_count)
        recount = (counts.registrants, counts.cancellations, counts.attendees)
        if stored != recount:
            wrong.append(f"event {event.id} {event.name!r}: stored {stored}, recount {recount}")
    totals = (
        [
            sum(x)
            for x in zip(
                *((e.registrant_count, e.cancellation_count, e.attendee_count) for e in events),
                strict=True,
            )
        ]
        if events
        else []
    )
    detail = f"{len(events)} events (registrants, cancellations, attendees: {totals})"
    return Verdict(
        "event counts equal a recount of their rows", not wrong, "; ".join(wrong) or detail
    )


def _segments(db: Session) -> Verdict:
    wrong, sizes = [], []
    for segment in db.scalars(select(Segment).where(Segment.kind == DYNAMIC).order_by(Segment.id)):
        stored = set(
            db.scalars(
                select(SegmentMember.contact_id).where(SegmentMember.segment_id == segment.id)
            )
        )
        stmt, _source = segment_service.membership_statement(db=db, segment=segment, live=True)
        fresh = set(db.scalars(stmt.with_only_columns(Contact.id)))
        sizes.append(f"{segment.name} {len(stored)}")
        if stored != fresh or segment.refresh_state == "failed":
            wrong.append(
                f"{segment.name} ({segment.owner_type} {segment.owner_id}'s, "
                f"{segment.refresh_state}): "
                f"{len(stored)} stored, {len(fresh)} now; missing {sorted(fresh - stored)[:8]}, "
                f"extra {sorted(stored - fresh)[:8]}"
            )
    return Verdict(
        "every segment equals its criteria evaluated now",
        not wrong,
        "; ".join(wrong) or ", ".join(sizes),
    )


def _jobs(
    db: Session, driver: Driver, drained: bool, state: dict[str, int], waited: float
) -> Verdict:
    statuses = Counter(db.scalars(select(SyncRun.status).where(SyncRun.id.in_(driver.runs))))
    others = Counter(db.scalars(select(SyncRun.status).where(SyncRun.id.not_in(driver.runs))))
    open_runs = sum(n for s, n in (statuses + others).items() if s not in FINAL_RUN_STATES)
    missing = len(driver.runs) - sum(statuses.values())
    ok = drained and not open_runs and not missing
    detail = (
        f"drained in {waited:.1f}s; the driver's {len(driver.runs)} sync runs {dict(statuses)}, "
        f"others (scheduled) {dict(others)}"
    )
    if not drained:
        detail = f"not drained after {waited:.1f}s: {state}; runs {dict(statuses)}"
    stuck = db.scalars(select(SyncRun).where(SyncRun.status.not_in(FINAL_RUN_STATES))).all()
    now = utcnow()
    for run in stuck:
        detail += (
            f"; run {run.id} ({run.kind}) {run.status} since {run.started_at:%H:%M:%S}, "
            f"last heartbeat {(now - run.heartbeat_at).total_seconds():.0f}s ago at "
            f"{run.progress_done}/{run.progress_total} {run.progress_label!r}"
        )
    return Verdict("no job lost", ok, detail)


def _locks_left(jobs: Jobs) -> Verdict:
    """No task lock held once the work drained: one held across two looks a second apart (a
    pass takes milliseconds here) is a killed worker's, and keeps its task — segment
    refreshes, journey steps, scheduled syncs — from running until it expires."""
    storage = jobs.huey.storage
    pattern = storage.result_key(f"{jobs.huey.name}.lock.*")

    def held() -> dict[bytes, int]:
        return {key: int(storage.conn.ttl(key)) for key in storage.conn.scan_iter(match=pattern)}

    first = held()
    time.sleep(1)
    stale = {
        key.decode().rpartition(".lock.")[2]: ttl for key, ttl in held().items() if key in first
    }
    detail = ", ".join(f"{name} (expires in {ttl}s)" for name, ttl in sorted(stale.items()))
    return Verdict("no task lock left held by a killed worker", not stale, detail or "none held")


# ------------------------------------------------------------------ the run


def run(
    params: Params,
    database_url: str,
    redis_url: str,
    workdir: Path,
    say: Callable[[str], None] = print,
) -> Outcome:
    """Set up an installation on ``database_url`` (a fresh schema), drive it, check it."""
    outcome = Outcome(logs=workdir)
    clock = time.monotonic()
    rng = random.Random(params.seed)
    with ExitStack() as stack:
        engine = make_engine(database_url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        factory = make_session_factory(engine)
        with factory() as db, db.begin():
            defaults.ensure_defaults(db)
        with factory() as db:
            org = build_org(db)
            # The marketer organizes Marta's webinars: their events and people are theirs.
            org_service.update_user(
                db=db, user_id=org.users["marketer"].id, email="marta.lindqvist@contoso.example"
            )
            db.commit()
        queue = f"soak-{os.getpid()}-{int(time.time())}"
        sink = stack.enter_context(smtp_sink())
        settings = Settings(
            database_url=database_url,
            redis_url=redis_url,
            queue_name=queue,
            queue_path=str(workdir / "unused-queue.db"),
            graph_rate_per_second=200,
            smtp_url=sink.url,
            smtp_rate_per_second=20,
            email_lease_seconds=2,
            public_url="https://soak.example",
        )
        jobs = Jobs(settings)
        stack.callback(jobs.huey.flush)
        env = {
            "GATHERLY_LOG_LEVEL": "WARNING",
            "GATHERLY_METRICS_DIR": str(workdir / "metrics"),
            "GATHERLY_GRAPH_CONCURRENCY": "2",
        }
        workers = Workers(stack, settings, env, workdir)
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        api_env = (
            subprocess_env(database_url)
            | env
            | {
                "GATHERLY_REDIS_URL": redis_url,
                "GATHERLY_QUEUE_NAME": queue,
                "GATHERLY_QUEUE_PATH": settings.queue_path,
                "GATHERLY_PUBLIC_URL": settings.public_url,
            }
        )
        api = stack.enter_context(_api_server(api_env, port, workdir / "api.log"))
        for slot in (1, 2):
            workers.start(slot)
        say(f"soak: {time.monotonic() - clock:.1f}s processes started")

        # Meanwhile, in this process: the emulator, the connection and a first full sync.
        data = load_fixture(SAMPLE)
        state = EmulatorState(copy.deepcopy(data), page_size=25)
        tenant = Tenant(stack.enter_context(serve_asgi(create_emulator_app(state))), state, data)
        admin_id = connect(factory, settings, tenant, admin_id=org.users["admin"].id)
        say(f"soak: {time.monotonic() - clock:.1f}s connected")
        Connected(factory, settings, tenant, admin_id).full_sync()
        say(f"soak: {time.monotonic() - clock:.1f}s first sync done")
        with factory() as db:
            prepared = _prepare(db, org, params, rng)
            webinars = dict(
                db.execute(
                    select(TeamsWebinar.graph_id, TeamsWebinar.id).where(
                        TeamsWebinar.event_id.is_not(None)
                    )
                ).all()
            )
        say(f"soak: {time.monotonic() - clock:.1f}s prepared")
        published = {w["id"] for w in tenant.state.data["webinars"] if w["status"] == "published"}
        setup = Setup(
            settings,
            factory,
            org,
            tenant,
            sink,
            base_url,
            httpx.URL(tenant.base_url).port or 80,
            webinars={g: i for g, i in webinars.items() if g in published},
            **prepared,
        )
        _wait_ready(api, base_url, workdir / "api.log", seconds=60)
        say(f"soak: {time.monotonic() - clock:.1f}s API ready")
        with httpx.Client(base_url=base_url, timeout=30) as http:
            # The API suite's helper takes its TestClient, an httpx.Client like this one.
            setup.message_id = _ready_message(http, org.headers["orgadmin"])
        outcome.timings["setup"] = time.monotonic() - clock
        say(f"soak: set up in {outcome.timings['setup']:.1f}s; driving for {params.duration:.0f}s")

        tenant.control(
            "faults",
            {
                "rate": params.fault_rate,
                "seed": params.seed,
                "kinds": FAULT_KINDS,
                "retry_after": 0.2,
                "slow_seconds": 0.3,
            },
        )
        clock = time.monotonic()
        driver = Driver(setup, params, outcome, workers)
        driver.run()
        outcome.timings["driving"] = time.monotonic() - clock
        say(f"soak: driven; draining (at most {params.drain_timeout:.0f}s)")

        clock = time.monotonic()
        drained, left = _drain(setup, jobs, params.drain_timeout)
        outcome.timings["drain"] = waited = time.monotonic() - clock
        clock = time.monotonic()
        with factory() as db:
            outcome.verdicts = [
                _unique_contacts(db, set(org.contacts.values())),
                *_emails(db, driver, sink, kills=len(outcome.kills)),
                _event_counts(db),
                _segments(db),
                _jobs(db, driver, drained, left, waited),
                _locks_left(jobs),
                Verdict(
                    "every API request answered (no 5xx, no lost connection), no driver error",
                    not driver.server_errors,
                    "; ".join(driver.server_errors[:10])
                    or f"{sum(outcome.counts.values())} actions",
                ),
            ]
        outcome.timings["checks"] = time.monotonic() - clock
    return outcome


def run_on_postgres(
    params: Params, redis_url: str, workdir: Path, say: Callable[[str], None] = print
) -> Outcome:
    """``run`` on a fresh schema of ``GATHERLY_TEST_POSTGRES_URL``'s database, dropped after."""
    with postgres_schema("soak") as url:
        return run(params, url, redis_url, workdir, say)
