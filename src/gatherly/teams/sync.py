"""The Teams webinar sync run: discover, fetch, schedule, progress and the run's record
(SPEC T2, T4, T12, R "town halls"); :mod:`gatherly.teams.apply` writes each fetched webinar.

Town halls go through every step exactly as webinars do (``TeamsWebinar.kind`` tells them
apart); only the fetch differs (no registrations).

Shape of a run (every step idempotent, so a killed run re-run converges):

1. *Discover* (full runs): list the tenant's users, refresh each organizer's status (T2)
   by asking Graph for the webinars and town halls they organize, and record new ones,
   ticked or not per the organizer's default (T4). One transaction per organizer.
2. *Fetch* each ticked webinar completely (registrations, sessions, attendance) from Graph,
   a few at a time, before writing anything about it.
3. *Apply* one webinar per transaction: diff the fetched state against the stored one and
   write only what differs, so a second run with nothing changed writes no rows.

A dry run does the same work inside transactions that are rolled back, and reports what
would change. What is counted and who is kept but not counted: docs/teams.md.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import FatalSyncError, GatherlyError, SyncError
from gatherly.graph.client import GraphClient
from gatherly.graph.errors import AccessPolicyMissing, PermissionMissing
from gatherly.teams import apply, fetch
from gatherly.teams import connection as teams_connection
from gatherly.teams.models import (
    KIND_TOWNHALL,
    ORGANIZER_ERROR,
    ORGANIZER_EXCLUDED,
    ORGANIZER_OK,
    ORGANIZER_PERMISSION,
    ORGANIZER_POLICY,
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

ProgressCallback = Callable[[int, int, str], None]
STALE_AFTER = timedelta(minutes=10)  # a running run without a heartbeat this long is dead


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
    ) -> RunReport:
        """Run a full sync, or one webinar's (Sync now); ``run_id`` continues a queued run."""
        kind = kind or ("webinar" if webinar_graph_id else "full")
        self.report.kind = kind
        self._start(kind, webinar_graph_id, by_user_id, run_id)
        client: GraphClient | None = None
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
            if webinar_graph_id:
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
            self._finish(client)
            if client is not None:
                client.close()
        return self.report

    # -------------------------------------------------------------- discovery (T2, T4)

    def _discover(self, client: GraphClient, connection: TeamsConnection) -> list[Target]:
        users = fetch.list_users(client)
        self.report.fetched["users"] += len(users)
        excluded = set(connection.organizer_exclusion_domains)
        targets: list[Target] = []
        for index, user in enumerate(users, 1):
            self.progress(index, len(users), f"checking {user.display_name or user.id}")
            status, detail, webinars = ORGANIZER_OK, "", list[fetch.Webinar]()
            if fetch.email_domain(user.email) in excluded:
                status, detail = (
                    ORGANIZER_EXCLUDED,
                    f"domain {fetch.email_domain(user.email)} is excluded",
                )
            else:
                try:
                    webinars = fetch.organizer_webinars(client, user.id)
                    webinars += self._townhalls_of(client, user)
                except AccessPolicyMissing as exc:
                    status, detail = ORGANIZER_POLICY, exc.graph_message
                except PermissionMissing as exc:
                    status, detail = ORGANIZER_PERMISSION, exc.describe()
                except SyncError as exc:
                    status, detail = ORGANIZER_ERROR, str(exc)
                    self._error("organizer", user.id, user.display_name, exc)
            self.report.fetched["webinars"] += 0  # always reported, even when none
            for webinar in webinars:
                self.report.fetched[_plural(webinar.kind)] += 1
            with self._unit() as db:
                organizer = self._upsert_organizer(db, user, status, detail)
                artifacts = self._artifacts_allowed(connection, organizer)
                for webinar in webinars:
                    row = self._upsert_webinar(db, organizer, webinar)
                    if row.sync_enabled and status == ORGANIZER_OK:
                        targets.append(Target(webinar, organizer.id, artifacts))
                        self.report.fetched[f"{_plural(webinar.kind)}_ticked"] += 1
        return targets

    def _townhalls_of(self, client: GraphClient, user: fetch.GraphUser) -> list[fetch.Webinar]:
        """The town halls a user organizes, asked after their webinars (the same access
        policy and permission cover both, so those refusals stay the organizer's status);
        any other failure is reported and never holds up the organizer's webinars."""
        try:
            return fetch.organizer_webinars(client, user.id, KIND_TOWNHALL)
        except (AccessPolicyMissing, PermissionMissing):
            raise
        except SyncError as exc:
            self.report.errors.append(
                {
                    "scope": "organizer",
                    "id": user.id,
                    "name": user.display_name,
                    "code": exc.code,
                    "message": f"the town halls could not be listed (webinars still sync): {exc}",
                }
            )
            return []

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

    def _upsert_organizer(
        self, db: Session, user: fetch.GraphUser, status: str, detail: str
    ) -> TeamsOrganizer:
        organizer = db.scalar(select(TeamsOrganizer).where(TeamsOrganizer.graph_user_id == user.id))
        if organizer is None:
            organizer = TeamsOrganizer(graph_user_id=user.id, sync_new_by_default=False)
            db.add(organizer)
            self.report.changes["organizers_created"] += 1
        user_id = organizer.user_id or teams_connection.map_organizer_user(db, user.email)
        values = {"display_name": user.display_name, "email": user.email, "user_id": user_id}
        apply.assign(organizer, values)
        if organizer.status != status or organizer.status_detail != detail:
            organizer.status, organizer.status_detail = status, detail
            organizer.status_changed_at = self.now()
            self.report.changes["organizer_statuses_changed"] += 1
        db.flush()
        return organizer

    def _upsert_webinar(
        self, db: Session, organizer: TeamsOrganizer, webinar: fetch.Webinar
    ) -> TeamsWebinar:
        row = db.scalar(select(TeamsWebinar).where(TeamsWebinar.graph_id == webinar.id))
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
        db.flush()
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
            if organizer.status == ORGANIZER_EXCLUDED:
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
                zip(targets, pool.map(load, targets), strict=True), 1
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


def _plural(kind: str) -> str:
    """The counter prefix of a kind: ``webinars``, ``townhalls``."""
    return f"{kind}s"


def create_run(
    db: Session,
    *,
    kind: str,
    webinar_graph_id: str | None = None,
    by_user_id: int | None = None,
    now: Callable[[], datetime] = utcnow,
) -> SyncRun:
    """Record a run about to start (the API creates it, then a worker runs it).

    Runs still marked running without a heartbeat for ``STALE_AFTER`` died with their
    process: they are marked interrupted here.
    """
    cutoff = now() - STALE_AFTER
    for stale in db.scalars(
        select(SyncRun).where(SyncRun.status == RUN_RUNNING, SyncRun.heartbeat_at < cutoff)
    ):
        stale.status, stale.finished_at = RUN_INTERRUPTED, stale.heartbeat_at
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
) -> RunReport:
    """Run a sync: the whole tenant, or one webinar (``webinar_graph_id``, *Sync now*).

    Args:
        session_factory: Sessions on the product database; each unit of work commits alone.
        settings: Installation settings (secret key, Graph rate and concurrency).
        webinar_graph_id: Sync only this webinar, ticked or not.
        dry_run: Do everything but roll every transaction back; the report's ``plan`` says
            what would change.
        kind: Recorded on the run (``full``, ``webinar``, ``scheduled``).
        by_user_id: Who asked (recorded on the run).
        run_id: A run already recorded by ``create_run`` (queued by the API) to carry out.
        progress: Called with (done, total, label) as webinars complete.
        make_client: Builds the Graph client (tests pass one on the in-process emulator).

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
        webinar_graph_id=webinar_graph_id, kind=kind, by_user_id=by_user_id, run_id=run_id
    )
