"""The Teams webinar sync run: discover, fetch, schedule, progress and the run's record
(SPEC T2, T4, T12, R "town halls"); :mod:`gatherly.teams.apply` writes each fetched webinar.

Town halls go through every step exactly as webinars do (``TeamsWebinar.kind`` tells them
apart); only the fetch differs (no registrations).

Shape of a run (every step idempotent, so a killed run re-run converges):

1. *Discover* (full runs): read the directory's changes (``/users/delta``), list the
   tenant's webinars and town halls (only granted organizers' are listed), record new ones
   ticked or not per the organizer's default (T4), and ask Graph about a few single users
   (their access policy, T2) within the day's budget. A steady-state run costs a handful of
   requests whatever the tenant's size.
2. *Fetch* each ticked webinar completely (registrations, sessions, attendance) from Graph,
   a few at a time, before writing anything about it.
3. *Apply* one webinar per transaction: diff the fetched state against the stored one and
   write only what differs, so a second run with nothing changed writes no rows.

A dry run does the same work inside transactions that are rolled back, and reports what
would change. What is counted and who is kept but not counted: docs/teams.md.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, func, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core import logs, metrics
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import FatalSyncError, GatherlyError, SyncError
from gatherly.graph.client import GraphClient
from gatherly.graph.errors import AccessPolicyMissing, GraphNotFound, PermissionMissing
from gatherly.teams import apply, fetch
from gatherly.teams import connection as teams_connection
from gatherly.teams.models import (
    KIND_TOWNHALL,
    KIND_WEBINAR,
    ORGANIZER_ERROR,
    ORGANIZER_EXCLUDED,
    ORGANIZER_OK,
    ORGANIZER_PERMISSION,
    ORGANIZER_POLICY,
    ORGANIZER_UNCHECKED,
    RUN_FAILED,
    RUN_INTERRUPTED,
    RUN_PARTIAL,
    RUN_RUNNING,
    RUN_SUCCEEDED,
    SyncRun,
    TeamsConnection,
    TeamsOrganizer,
    TeamsWebinar,
    run_notes,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

ProgressCallback = Callable[[int, int, str], None]
KIND_NOTIFIED = "notified"  # a run for one event a change notification named
# A worker's run beats every HEARTBEAT from a thread of its own; one silent for DEAD_AFTER
# died with its worker (a SIGKILL, a lost machine). A run still waiting in the queue, never
# taken, is given up after STALE_AFTER (its message was lost with a killed worker).
HEARTBEAT = timedelta(seconds=10)
DEAD_AFTER = timedelta(minutes=1)
STALE_AFTER = timedelta(minutes=10)


@dataclass
class Target:
    """A webinar the run will fetch and apply; ``artifacts``: with recordings/transcripts."""

    webinar: fetch.Webinar
    organizer_id: int
    artifacts: bool = False


@dataclass
class RunReport:
    """What a run did (or, dry, would do)."""

    run_id: int | None
    status: str
    dry_run: bool
    kind: str = "full"
    fetched: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    errors: list[dict[str, Any]] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    graph_stats: dict[str, float] = field(default_factory=dict)
    recorded_notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "fetched": dict(sorted(self.fetched.items())),
            "changes": dict(sorted(self.changes.items())),
            "errors": self.errors,
            "plan": self.plan,
            "graph_stats": self.graph_stats,
            "notes": self.notes,
        }

    @property
    def notes(self) -> list[str]:
        """What to know beyond the counts (``teams.models.run_notes``), then what the run
        noted as it went (``recorded_notes``)."""
        return run_notes(self.kind, self.fetched) + self.recorded_notes

    def note(self, text: str) -> None:
        """Record a note on the run (once): not an error, the run still succeeds."""
        if text not in self.recorded_notes:
            self.recorded_notes.append(text)


class Syncer:
    """One sync run. Use ``run_sync``; this class holds the run's state."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settings: Settings,
        *,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
        make_client: teams_connection.ClientFactory | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.settings = settings
        self.dry_run = dry_run
        self.progress = progress or (lambda done, total, label: None)
        self.make_client = make_client or teams_connection.client_factory(settings)
        self.now = now
        self.report = RunReport(run_id=None, status=RUN_RUNNING, dry_run=dry_run)
        self.planned_contacts: set[tuple[str, int | None]] = set()

    # -------------------------------------------------------------- transactions

    @contextmanager
    def _unit(self) -> Iterator[Session]:
        """One unit of work: committed, or rolled back in a dry run."""
        db = self.session_factory()
        try:
            yield db
            if self.dry_run:
                db.rollback()
            else:
                db.commit()
        except BaseException:
            db.rollback()
            raise
        finally:
            db.close()

    def _error(self, scope: str, ref: str, name: str, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, GatherlyError) else type(exc).__name__
        message = str(exc) if isinstance(exc, GatherlyError) else f"{type(exc).__name__}: {exc}"
        self.report.errors.append(
            {"scope": scope, "id": ref, "name": name, "code": code, "message": message}
        )
        log.warning("sync %s %s (%s) failed: %s", scope, ref, name, message)

    # -------------------------------------------------------------- run record

    def _start(
        self, kind: str, webinar_graph_id: str | None, by_user_id: int | None, run_id: int | None
    ) -> None:
        if self.dry_run:
            return
        if run_id is not None:
            self.report.run_id = run_id
            with self._unit() as db:
                run = db.get(SyncRun, run_id)
                if run is not None:  # taken: from now on it beats (or is found dead)
                    if run.status == RUN_INTERRUPTED and run.taken_at is None:
                        # Given up while it waited in a long queue: it runs after all.
                        run.status, run.finished_at = RUN_RUNNING, None
                    run.taken_at = run.heartbeat_at = self.now()
                    run.taken_by = current_process()
            return
        with self._unit() as db:
            self.report.run_id = create_run(
                db,
                kind=kind,
                webinar_graph_id=webinar_graph_id,
                by_user_id=by_user_id,
                now=self.now,
            ).id

    def _beat(self, done: int, total: int, label: str) -> None:
        self.progress(done, total, label)
        if self.report.run_id is None:
            return
        with self._unit() as db:
            run = db.get(SyncRun, self.report.run_id)
            if run is not None:
                run.progress_done, run.progress_total, run.progress_label = done, total, label
                run.heartbeat_at = self.now()
                run.fetched = dict(self.report.fetched)
                run.changes = dict(self.report.changes)

    def _finish(self, client: GraphClient | None) -> None:
        if client is not None:
            self.report.graph_stats = client.stats.as_dict()
        if self.report.status == RUN_RUNNING:
            self.report.status = RUN_PARTIAL if self.report.errors else RUN_SUCCEEDED
        if not self.dry_run:
            metrics.SYNC_RUNS.labels(self.report.kind, self.report.status).inc()
        if self.report.run_id is None:
            return
        with self._unit() as db:
            run = db.get(SyncRun, self.report.run_id)
            assert run is not None
            run.status = self.report.status
            run.finished_at = run.heartbeat_at = self.now()
            run.fetched = dict(self.report.fetched)
            run.changes = dict(self.report.changes)
            run.graph_stats = self.report.graph_stats
            run.errors = self.report.errors
            run.recorded_notes = self.report.recorded_notes

    # -------------------------------------------------------------- the run

    def run(
        self,
        *,
        webinar_graph_id: str | None = None,
        kind: str | None = None,
        by_user_id: int | None = None,
        run_id: int | None = None,
        event_kind: str = KIND_WEBINAR,
    ) -> RunReport:
        """Run a full sync, or one webinar's (Sync now); ``run_id`` continues a queued run.

        ``kind`` ``notified``: the webinar (or town hall, ``event_kind``) Graph notified a
        change of — synced only when ticked, and discovered first when new."""
        kind = kind or ("webinar" if webinar_graph_id else "full")
        self.report.kind = kind
        self._start(kind, webinar_graph_id, by_user_id, run_id)
        client: GraphClient | None = None
        stop = threading.Event()
        beating = threading.Thread(
            target=logs.in_this_context(self._keep_beating),
            args=(stop,),
            name=f"sync-run-{self.report.run_id}-heartbeat",
            daemon=True,
        )
        if self.report.run_id is not None:
            beating.start()
        try:
            with self.session_factory() as db:
                connection = teams_connection.get_connection(db)
                db.expunge(connection)
            if not connection.sync_enabled:
                self.report.errors.append(
                    {
                        "scope": "installation",
                        "id": "",
                        "name": "sync webinar data",
                        "code": "sync_disabled",
                        "message": "'Sync webinar data' is off in the Teams settings; nothing synced",
                    }
                )
                self.report.status = RUN_SUCCEEDED
                return self.report
            client = self.make_client(connection)
            if webinar_graph_id and kind == KIND_NOTIFIED:
                targets = self._notified(client, connection, webinar_graph_id, event_kind)
            elif webinar_graph_id:
                targets = self._one(client, connection, webinar_graph_id)
            else:
                targets = self._discover(client, connection)
            self._sync_targets(client, connection, targets)
        except GatherlyError as exc:
            self._error("run", "", kind, exc)
            self.report.status = RUN_FAILED
        except Exception as exc:
            self._error("run", "", kind, exc)
            self.report.status = RUN_FAILED
            raise
        except BaseException:
            self.report.status = RUN_INTERRUPTED
            raise
        finally:
            stop.set()
            if beating.is_alive():
                beating.join()
            self._finish(client)
            if client is not None:
                client.close()
        return self.report

    def _keep_beating(self, stop: threading.Event) -> None:
        """The run's heartbeat, from its own thread: a long Graph wait or a large webinar
        between progress beats must not make the run look dead (``DEAD_AFTER``)."""
        while not stop.wait(HEARTBEAT.total_seconds()):
            try:
                with self._unit() as db:
                    db.execute(
                        update(SyncRun)
                        .where(SyncRun.id == self.report.run_id, SyncRun.status == RUN_RUNNING)
                        .values(heartbeat_at=self.now())
                    )
            except Exception:  # the next beat tries again; the run itself goes on
                log.warning("sync run %s: heartbeat failed", self.report.run_id, exc_info=True)

    # -------------------------------------------------------------- discovery (T2, T4)

    def _discover(self, client: GraphClient, connection: TeamsConnection) -> list[Target]:
        """Directory changes, the tenant's webinars and town halls, and the day's share of
        per-user probes (docs/teams.md, "Discovery"): a steady-state run costs a few requests
        whatever the number of users."""
        self.progress(0, 0, "reading the directory")
        self._read_directory(client, connection)
        self._apply_exclusions(connection)
        self.progress(0, 0, "listing webinars and town halls")
        events = fetch.tenant_events(client) + self._tenant_townhalls(client)
        self.report.fetched["webinars"] += 0  # always reported, even when none
        targets, vanished = self._record_events(connection, events)
        self._probe_due(client, vanished)
        return targets

    def _read_directory(self, client: GraphClient, connection: TeamsConnection) -> None:
        """Users added, changed and removed since the last run (``/users/delta``); on the
        first run, or when Graph no longer honours the stored link, the whole directory."""
        changes = fetch.directory_changes(client, connection.users_delta_link)
        full = connection.users_delta_link is None or changes.restarted
        if changes.restarted:
            self.report.note(
                "Microsoft Graph no longer honoured the directory's change link, so the whole "
                "directory was read again."
            )
        self.report.fetched["users"] += len(changes.users)
        with self._unit() as db:
            emails = teams_connection.user_emails(db)
        seen: set[str] = set()
        for chunk in _chunks(changes.users, 1000):
            with self._unit() as db:
                ids = [u.id for u in chunk]
                rows = {
                    o.graph_user_id: o
                    for o in db.scalars(
                        select(TeamsOrganizer).where(TeamsOrganizer.graph_user_id.in_(ids))
                    )
                }
                for user in chunk:
                    seen.add(user.id)
                    row = rows.get(user.id)
                    if row is None:
                        row = TeamsOrganizer(graph_user_id=user.id, sync_new_by_default=False)
                        row.status, row.status_detail = ORGANIZER_UNCHECKED, ""
                        row.display_name = ""
                        db.add(row)
                        self.report.changes["users_added"] += 1
                    # Only what Graph told: a changed user comes with what changed.
                    values: dict[str, Any] = {"removed_at": None}
                    if user.display_name is not None:
                        values["display_name"] = user.display_name[:300]
                    if user.email is not None:
                        values["email"] = user.email
                    values["user_id"] = row.user_id or emails.get(
                        values.get("email", row.email) or ""
                    )
                    if apply.assign(row, values) and row.id is not None:
                        self.report.changes["users_updated"] += 1
        removed = set(changes.removed)
        with self._unit() as db:
            if full:  # whoever the whole directory no longer holds is gone
                present = db.scalars(
                    select(TeamsOrganizer.graph_user_id).where(TeamsOrganizer.removed_at.is_(None))
                )
                removed |= set(present) - seen
            for gone_ids in _chunks(sorted(removed), 1000):
                gone = db.execute(
                    update(TeamsOrganizer)
                    .execution_options(preserve_rowcount=True)
                    .where(
                        TeamsOrganizer.graph_user_id.in_(gone_ids),
                        TeamsOrganizer.removed_at.is_(None),
                    )
                    .values(removed_at=self.now())
                )
                if count := _rowcount(gone):
                    self.report.changes["users_removed"] += count
            stored = db.get(TeamsConnection, connection.id)
            if stored is not None:
                stored.users_delta_link = changes.delta_link
            # Gatherly users made since: their Teams users are theirs now.
            for mapped_emails in _chunks(sorted(emails), 1000):
                for row in db.scalars(
                    select(TeamsOrganizer).where(
                        TeamsOrganizer.user_id.is_(None),
                        func.lower(TeamsOrganizer.email).in_(mapped_emails),
                    )
                ):
                    row.user_id = emails[(row.email or "").lower()]
        connection.users_delta_link = changes.delta_link

    def _apply_exclusions(self, connection: TeamsConnection) -> None:
        """Users in an excluded domain are never probed nor synced; users whose domain is no
        longer excluded go back to *not checked yet*."""
        domains = list(connection.organizer_exclusion_domains)
        with self._unit() as db:
            for domain in domains:
                moved = db.execute(
                    update(TeamsOrganizer)
                    .execution_options(preserve_rowcount=True)
                    .where(
                        TeamsOrganizer.email.endswith(f"@{domain}", autoescape=True),
                        TeamsOrganizer.status != ORGANIZER_EXCLUDED,
                    )
                    .values(
                        status=ORGANIZER_EXCLUDED,
                        status_detail=f"domain {domain} is excluded",
                        status_changed_at=self.now(),
                    )
                )
                if count := _rowcount(moved):
                    self.report.changes["organizer_statuses_changed"] += count
            for row in db.scalars(
                select(TeamsOrganizer).where(TeamsOrganizer.status == ORGANIZER_EXCLUDED)
            ):
                if fetch.email_domain(row.email) not in domains:
                    self._set_status(row, ORGANIZER_UNCHECKED, "")

    def _tenant_townhalls(self, client: GraphClient) -> list[fetch.Webinar]:
        """The tenant's town halls, listed after its webinars; a failure is reported and never
        holds up the webinars."""
        try:
            return fetch.tenant_events(client, KIND_TOWNHALL)
        except (AccessPolicyMissing, PermissionMissing):
            raise
        except SyncError as exc:
            self._error("installation", "", "town halls", exc)
            return []

    def _set_status(self, organizer: TeamsOrganizer, status: str, detail: str) -> None:
        if organizer.status != status or organizer.status_detail != detail:
            organizer.status, organizer.status_detail = status, detail
            organizer.status_changed_at = self.now()
            self.report.changes["organizer_statuses_changed"] += 1

    def _record_events(
        self, connection: TeamsConnection, events: list[fetch.Webinar]
    ) -> tuple[list[Target], set[int]]:
        """Record the listed webinars and town halls under their organizers (who hold the
        access policy, or Graph would not list them) and return the ticked ones to sync, and
        the organizers thought granted whose webinars all left the list (to probe)."""
        targets: list[Target] = []
        excluded = set(connection.organizer_exclusion_domains)
        with self._unit() as db:
            organizers = self._organizers_of(db, events)
            listed: dict[int, int] = {}
            for webinar in events:
                organizer = organizers.get(webinar.organizer_id or "")
                if organizer is None:
                    continue
                domain = fetch.email_domain(organizer.email)
                if domain in excluded:  # as the settings say now, whatever the stored status
                    self._set_status(organizer, ORGANIZER_EXCLUDED, f"domain {domain} is excluded")
                for co_id in webinar.co_organizer_ids:
                    if co_id in organizers:
                        organizers[co_id].organizes = True
                organizer.organizes = True
                if organizer.status == ORGANIZER_EXCLUDED:
                    self.report.fetched[f"{_plural(webinar.kind)}_excluded"] += 1
                    continue
                self.report.fetched[_plural(webinar.kind)] += 1
                self._set_status(organizer, ORGANIZER_OK, "")
                listed[organizer.id] = listed.get(organizer.id, 0) + 1
            rows = self._webinar_rows(db, [w.id for w in events])
            for webinar in events:
                organizer = organizers.get(webinar.organizer_id or "")
                if organizer is None or organizer.status != ORGANIZER_OK:
                    continue
                row = self._upsert_webinar(db, organizer, webinar, rows.get(webinar.id))
                if row.sync_enabled:
                    artifacts = self._artifacts_allowed(connection, organizer)
                    targets.append(Target(webinar, organizer.id, artifacts))
                    self.report.fetched[f"{_plural(webinar.kind)}_ticked"] += 1
            known = db.scalars(
                select(TeamsOrganizer.id)
                .where(TeamsOrganizer.status == ORGANIZER_OK)
                .where(TeamsOrganizer.id.in_(select(TeamsWebinar.organizer_id)))
            )
            vanished = set(known) - set(listed)
        return targets, vanished

    def _organizers_of(self, db: Session, events: list[fetch.Webinar]) -> dict[str, TeamsOrganizer]:
        """The rows of the listed events' organizers and co-organizers, by Graph id; an
        organizer the directory has not shown yet is added from the event's ``createdBy``."""
        wanted: dict[str, str] = {}
        for webinar in events:
            if webinar.organizer_id:
                wanted[webinar.organizer_id] = webinar.organizer_name
            for co_id in webinar.co_organizer_ids:
                wanted.setdefault(co_id, "")
        found: dict[str, TeamsOrganizer] = {}
        for chunk in _chunks(sorted(wanted), 1000):
            found.update(
                (o.graph_user_id, o)
                for o in db.scalars(
                    select(TeamsOrganizer).where(TeamsOrganizer.graph_user_id.in_(chunk))
                )
            )
        for graph_id, name in wanted.items():
            if graph_id not in found and name:
                row = TeamsOrganizer(
                    graph_user_id=graph_id,
                    display_name=name[:300],
                    status=ORGANIZER_UNCHECKED,
                    status_detail="",
                    sync_new_by_default=False,
                )
                db.add(row)
                found[graph_id] = row
                self.report.changes["users_added"] += 1
        db.flush()
        return found

    @staticmethod
    def _webinar_rows(db: Session, graph_ids: list[str]) -> dict[str, TeamsWebinar]:
        rows: dict[str, TeamsWebinar] = {}
        for chunk in _chunks(graph_ids, 1000):
            rows.update(
                (w.graph_id, w)
                for w in db.scalars(select(TeamsWebinar).where(TeamsWebinar.graph_id.in_(chunk)))
            )
        return rows

    def _probe_due(self, client: GraphClient, vanished: set[int]) -> None:
        """Ask Graph about single users, within the day's budget (``teams_probes_per_day``,
        shared over the day's runs), the users who matter first: organizers whose webinars
        all left the list, users mapped to Gatherly users, co-organizers not known to be
        granted, then users never checked."""
        now = self.now()
        with self.session_factory() as db:
            connection = teams_connection.get_connection(db)
            runs_per_day = max(1, 1440 // max(1, connection.sync_interval_minutes))
            per_day = self.settings.teams_probes_per_day
            spent = db.scalar(
                select(func.count())
                .select_from(TeamsOrganizer)
                .where(TeamsOrganizer.probed_at > now - timedelta(days=1))
            )
            budget = min(-(-per_day // runs_per_day), per_day - int(spent or 0))
            due = probe_candidates(db, vanished=vanished, now=now, limit=max(0, budget))
        for index, (organizer_id, graph_id, name) in enumerate(due, 1):
            self.progress(index, len(due), f"checking {name or graph_id}")
            self.probe(client, organizer_id, graph_id, name)
        self.report.fetched["users_probed"] += len(due)

    def probe(self, client: GraphClient, organizer_id: int, graph_id: str, name: str) -> None:
        """Probe one user (``probe_user``) and record the answer as their status."""
        status, detail, organizes = probe_user(client, graph_id)
        if status == ORGANIZER_ERROR:
            self.report.errors.append(
                {"scope": "organizer", "id": graph_id, "name": name, "code": "probe_failed"}
                | {"message": detail}
            )
        with self._unit() as db:
            organizer = db.get(TeamsOrganizer, organizer_id)
            if organizer is not None:
                self._set_status(organizer, status, detail)
                organizer.probed_at = self.now()
                organizer.organizes = organizer.organizes or organizes

    def _artifacts_allowed(self, connection: TeamsConnection, organizer: TeamsOrganizer) -> bool:
        """Recordings and transcripts when the organizer's setting says so (T11) and the app
        holds the permissions; a limited install is reported once per run."""
        if not organizer.sync_recordings:
            return False
        missing = [
            p for p in fetch.RECORDING_PERMISSIONS if p not in connection.granted_permissions
        ]
        if missing and not any(e["code"] == "limited_install" for e in self.report.errors):
            self.report.errors.append(
                {
                    "scope": "installation",
                    "id": "",
                    "name": "recordings and transcripts",
                    "code": "limited_install",
                    "message": "recordings and transcripts are on for some organizers, but the "
                    f"app lacks {', '.join(missing)} (limited install); grant them and "
                    "run `gatherly teams test`",
                }
            )
        return not missing

    def _upsert_webinar(
        self,
        db: Session,
        organizer: TeamsOrganizer,
        webinar: fetch.Webinar,
        row: TeamsWebinar | None,
    ) -> TeamsWebinar:
        values = {
            "kind": webinar.kind,
            "organizer_id": organizer.id,
            "display_name": webinar.display_name[:500],
            "status": webinar.status,
            "start_at": webinar.start_at,
            "end_at": webinar.end_at,
        }
        if row is None:
            row = TeamsWebinar(
                graph_id=webinar.id,
                sync_enabled=organizer.sync_new_by_default and organizer.status == ORGANIZER_OK,
                discovered_at=self.now(),
                last_error="",
                **values,
            )
            db.add(row)
            self.report.changes[f"{_plural(webinar.kind)}_discovered"] += 1
        elif apply.assign(row, values):
            self.report.changes[f"{_plural(webinar.kind)}_updated"] += 1
        return row

    def _one(self, client: GraphClient, connection: TeamsConnection, graph_id: str) -> list[Target]:
        with self.session_factory() as db:
            row = db.scalar(select(TeamsWebinar).where(TeamsWebinar.graph_id == graph_id))
            if row is None:
                raise FatalSyncError(
                    f"unknown webinar or town hall {graph_id!r}: run a full sync to discover it"
                )
            organizer = db.get(TeamsOrganizer, row.organizer_id)
            assert organizer is not None
            excluded = set(connection.organizer_exclusion_domains)
            if (
                organizer.status == ORGANIZER_EXCLUDED
                or fetch.email_domain(organizer.email) in excluded
            ):
                raise FatalSyncError(
                    f"the organizer of {row.display_name!r} is in an excluded domain; never synced"
                )
            organizer_id, name, kind = organizer.id, organizer.display_name, row.kind
            artifacts = self._artifacts_allowed(connection, organizer)
        try:
            webinar = fetch.get_webinar(client, graph_id, kind)
        except AccessPolicyMissing as exc:
            with self._unit() as db:
                organizer = db.get(TeamsOrganizer, organizer_id)
                assert organizer is not None
                organizer.status, organizer.status_detail = ORGANIZER_POLICY, exc.graph_message
            raise FatalSyncError(
                f"no application access policy grants this app access to {name}'s webinars "
                "and town halls (see `gatherly teams organizers` for the commands)"
            ) from None
        self.report.fetched[_plural(webinar.kind)] += 1
        return [Target(webinar, organizer_id, artifacts)]

    def _notified(
        self, client: GraphClient, connection: TeamsConnection, graph_id: str, event_kind: str
    ) -> list[Target]:
        """The event a change notification named: synced when ticked; when Gatherly has not
        seen it yet (a new webinar), recorded as discovery would (ticked per its organizer's
        default) and then synced if ticked."""
        with self.session_factory() as db:
            row = db.scalar(select(TeamsWebinar).where(TeamsWebinar.graph_id == graph_id))
            known, ticked = row is not None, row is not None and row.sync_enabled
        if known and not ticked:
            return []
        if known:
            return self._one(client, connection, graph_id)
        kinds = [event_kind] + [k for k in fetch.COLLECTIONS if k != event_kind]
        for kind in kinds:
            try:
                webinar = fetch.get_webinar(client, graph_id, kind)
            except GraphNotFound:
                continue
            targets, _vanished = self._record_events(connection, [webinar])
            return targets
        raise FatalSyncError(f"Teams has no webinar or town hall {graph_id!r} (deleted?)")

    # -------------------------------------------------------------- fetch + apply

    def _sync_targets(
        self, client: GraphClient, connection: TeamsConnection, targets: list[Target]
    ) -> None:
        total = len(targets)
        self._beat(0, total, "fetching webinars")
        now = self.now()

        def load(target: Target) -> fetch.WebinarData | BaseException:
            try:
                return fetch.fetch_webinar(
                    client, target.webinar, now=now, artifacts=target.artifacts
                )
            except Exception as exc:  # reported per webinar; the run goes on
                return exc

        workers = max(1, min(self.settings.graph_concurrency, total))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="graph") as pool:
            for done, (target, data) in enumerate(
                # The pool's threads log with the task's (and its request's) id too.
                zip(targets, pool.map(logs.in_this_context(load), targets), strict=True),
                1,
            ):
                name = target.webinar.display_name
                if isinstance(data, BaseException):
                    self._webinar_failed(target, data)
                else:
                    self.report.fetched["registrations"] += len(data.registrations)
                    self.report.fetched["sessions"] += len(data.sessions)
                    self.report.fetched["attendance_reports"] += sum(
                        len(s.reports) for s in data.sessions
                    )
                    self._note_zones(data)
                    try:
                        self._apply(connection, target, data)
                    except GatherlyError as exc:
                        self._webinar_failed(target, exc)
                    for message in data.artifact_errors:
                        self.report.errors.append(
                            {
                                "scope": "recordings",
                                "id": target.webinar.id,
                                "name": name,
                                "code": "recordings_unavailable",
                                "message": message,
                            }
                        )
                self._beat(done, total, name)

    def _note_zones(self, data: fetch.WebinarData) -> None:
        """Say which time-zone names no table knows were read as UTC (never a failure)."""
        webinar = data.webinar
        found = (
            [f"the event's own times ({webinar.unknown_zone!r})"] if webinar.unknown_zone else []
        )
        found += [f"session {s!r} ({z!r})" for s, z in sorted(data.unknown_session_zones.items())]
        if found:
            self.report.note(
                f"{webinar.label.capitalize()} {webinar.display_name!r}: Teams gave a time zone "
                f"no time-zone table knows for {', '.join(found)}; those times were read as "
                "UTC and the zone name is kept as Teams gave it."
            )

    def _webinar_failed(self, target: Target, exc: BaseException) -> None:
        self._error(target.webinar.label, target.webinar.id, target.webinar.display_name, exc)
        if self.dry_run:
            return
        with self._unit() as db:
            row = db.scalar(select(TeamsWebinar).where(TeamsWebinar.graph_id == target.webinar.id))
            if row is not None:
                row.last_error = str(exc)[:2000]

    def _apply(self, connection: TeamsConnection, target: Target, data: fetch.WebinarData) -> None:
        with self._unit() as db:
            applier = apply.Applier(db, self, connection, target, data)
            applier.apply()
            self.report.changes.update(applier.changes)
            if self.dry_run:
                self.report.plan.append(applier.plan())


def _rowcount(result: Any) -> int:
    """Rows an UPDATE changed (psycopg reports them when asked to preserve the count)."""
    return max(int(result.rowcount or 0), 0)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def probe_user(client: GraphClient, graph_id: str) -> tuple[str, str, bool]:
    """Ask Graph for the webinars one user organizes, which tells whether the access policy
    covers them: (status, detail, whether they organize any)."""
    try:
        return ORGANIZER_OK, "", bool(fetch.organizer_webinars(client, graph_id))
    except AccessPolicyMissing as exc:
        return ORGANIZER_POLICY, exc.graph_message, False
    except PermissionMissing as exc:
        return ORGANIZER_PERMISSION, exc.describe(), False
    except SyncError as exc:
        return ORGANIZER_ERROR, str(exc), False


def probe_candidates(
    db: Session, *, vanished: set[int], now: datetime, limit: int
) -> list[tuple[int, str, str]]:
    """Who to ask Graph about alone this run, most useful first, at most ``limit``: (id, Graph
    id, name). A user checked within the day is not asked again (within the hour for an
    organizer whose webinars all left the tenant's list)."""
    if limit <= 0:
        return []
    day, hour = now - timedelta(days=1), now - timedelta(hours=1)
    live = select(TeamsOrganizer.id, TeamsOrganizer.graph_user_id, TeamsOrganizer.display_name)
    live = live.where(
        TeamsOrganizer.removed_at.is_(None), TeamsOrganizer.status != ORGANIZER_EXCLUDED
    )
    never = TeamsOrganizer.probed_at.is_(None)
    tiers = [
        live.where(TeamsOrganizer.id.in_(sorted(vanished) or [-1])).where(
            or_(never, TeamsOrganizer.probed_at < hour)
        ),
        live.where(
            TeamsOrganizer.user_id.is_not(None), TeamsOrganizer.status != ORGANIZER_OK
        ).where(or_(never, TeamsOrganizer.probed_at < day)),
        live.where(TeamsOrganizer.organizes, TeamsOrganizer.status != ORGANIZER_OK).where(
            or_(never, TeamsOrganizer.probed_at < day)
        ),
        live.where(TeamsOrganizer.status == ORGANIZER_UNCHECKED, never),
    ]
    chosen: dict[int, tuple[int, str, str]] = {}
    for tier in tiers:
        if len(chosen) >= limit:
            break
        for row_id, graph_id, name in db.execute(tier.order_by(TeamsOrganizer.id).limit(limit)):
            if len(chosen) < limit:
                chosen.setdefault(row_id, (row_id, graph_id, name))
    return list(chosen.values())


def _plural(kind: str) -> str:
    """The counter prefix of a kind: ``webinars``, ``townhalls``."""
    return f"{kind}s"


def alive(now: datetime) -> ColumnElement[bool]:
    """Runs that are going: taken and beating, or queued and not given up."""
    return and_(
        SyncRun.status == RUN_RUNNING,
        or_(
            and_(SyncRun.taken_at.is_not(None), SyncRun.heartbeat_at >= now - DEAD_AFTER),
            and_(SyncRun.taken_at.is_(None), SyncRun.heartbeat_at >= now - STALE_AFTER),
        ),
    )


def sweep(db: Session, *, now: datetime) -> list[int]:
    """Mark runs whose worker died (or whose queued message was lost) interrupted: their
    status is final, and they no longer hold back scheduled or notified syncs. Returns
    their ids."""
    silent = db.scalars(select(SyncRun).where(SyncRun.status == RUN_RUNNING, not_(alive(now))))
    taken = db.scalars(
        select(SyncRun).where(SyncRun.status == RUN_RUNNING, SyncRun.taken_by.is_not(None))
    )
    dead = {run.id: run for run in silent} | {
        run.id: run for run in taken if _process_gone(run.taken_by)
    }
    for run in dead.values():
        run.status, run.finished_at = RUN_INTERRUPTED, run.heartbeat_at
        log.warning(
            "sync run %s interrupted: %s",
            run.id,
            "its worker stopped" if run.taken_at else "never taken",
        )
    return sorted(dead)


def _process_gone(taken_by: str | None) -> bool:
    """Whether the worker process that took a run is on this machine and no longer runs
    (a SIGKILLed worker's run is given up as soon as the next sweep, not a minute later)."""
    host, _, pid = (taken_by or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit() or taken_by == current_process():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of that number another user runs: not gone
        return False
    return False


def current_process() -> str:
    """This process as a run's ``taken_by`` names it (a forked worker has its own pid)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def create_run(
    db: Session,
    *,
    kind: str,
    webinar_graph_id: str | None = None,
    by_user_id: int | None = None,
    now: Callable[[], datetime] = utcnow,
) -> SyncRun:
    """Record a run about to start (the API creates it, then a worker runs it).

    Runs whose worker died are marked interrupted here (``sweep``).
    """
    sweep(db, now=now())
    run = SyncRun(
        kind=kind,
        webinar_graph_id=webinar_graph_id,
        status=RUN_RUNNING,
        started_at=now(),
        heartbeat_at=now(),
        triggered_by_id=by_user_id,
        fetched={},
        changes={},
        graph_stats={},
        errors=[],
    )
    db.add(run)
    db.flush()
    return run


def run_sync(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    webinar_graph_id: str | None = None,
    dry_run: bool = False,
    kind: str | None = None,
    by_user_id: int | None = None,
    run_id: int | None = None,
    progress: ProgressCallback | None = None,
    make_client: teams_connection.ClientFactory | None = None,
    event_kind: str = KIND_WEBINAR,
) -> RunReport:
    """Run a sync: the whole tenant, or one webinar (``webinar_graph_id``, *Sync now*).

    Args:
        session_factory: Sessions on the product database; each unit of work commits alone.
        settings: Installation settings (secret key, Graph rate and concurrency).
        webinar_graph_id: Sync only this webinar, ticked or not.
        dry_run: Do everything but roll every transaction back; the report's ``plan`` says
            what would change.
        kind: Recorded on the run (``full``, ``webinar``, ``scheduled``, ``notified``: the
            event a change notification named, synced only if ticked).
        by_user_id: Who asked (recorded on the run).
        run_id: A run already recorded by ``create_run`` (queued by the API) to carry out.
        progress: Called with (done, total, label) as webinars complete.
        make_client: Builds the Graph client (tests pass one on the in-process emulator).
        event_kind: With ``notified``: ``webinar`` or ``townhall``, where to look first.

    Returns:
        The run's report; the same facts are stored on its ``sync_run`` row.

    Example:
        >>> report = run_sync(factory, settings)  # doctest: +SKIP
        >>> report.changes["events_created"]  # doctest: +SKIP
    """
    syncer = Syncer(
        session_factory, settings, dry_run=dry_run, progress=progress, make_client=make_client
    )
    return syncer.run(
        webinar_graph_id=webinar_graph_id,
        kind=kind,
        by_user_id=by_user_id,
        run_id=run_id,
        event_kind=event_kind,
    )
