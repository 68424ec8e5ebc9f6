"""The job queue (SPEC T12): Huey on a SQLite file by default — embedded, no server, one
consumer — and on Redis when ``GATHERLY_REDIS_URL`` is set, for many consumers on many
machines. See docs/decisions.md.

``Jobs(settings)`` builds the queue and registers the tasks; the web app enqueues with
it and ``gatherly worker`` consumes with it, so both sides agree on task names.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from huey import Huey, RedisExpireHuey, SqliteHuey, crontab  # type: ignore[import-untyped]
from huey.consumer import Consumer  # type: ignore[import-untyped]
from huey.exceptions import TaskLockedException  # type: ignore[import-untyped]
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture import duplicates as duplicate_jobs
from gatherly.capture import forms as capture_forms
from gatherly.core import changes, metrics
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, utcnow
from gatherly.email import delivery as email_delivery
from gatherly.jobs.context import with_request_ids
from gatherly.journey import engine as journey_engine
from gatherly.linkedin import intake as linkedin_intake
from gatherly.scoring import jobs as scoring_jobs
from gatherly.segment import jobs as segment_jobs
from gatherly.teams import jobs as teams_jobs
from gatherly.teams import notifications, sync
from gatherly.teams.models import SyncRun

log = logging.getLogger(__name__)
SCHEDULE_LOCK = "teams-scheduled-sync"
SEGMENT_LOCK = "segment-refresh"
JOURNEY_LOCK = "journey-tick"
NOTIFIED_LOCK = "teams-notified"
SUBSCRIPTION_LOCK = "teams-subscriptions"
LOCKS = (SCHEDULE_LOCK, SEGMENT_LOCK, JOURNEY_LOCK, NOTIFIED_LOCK, SUBSCRIPTION_LOCK)
# On Redis, where many consumers share the queue, a lock outlives a killed holder by at
# most this long (a starting consumer cannot clear locks others may hold).
LOCK_TTL_SECONDS = 15 * 60
# Each consumer's scheduler queues every periodic task each minute; the first to run
# claims the minute and the others' copies do nothing.
PERIODIC_CLAIM_SECONDS = 55


def make_huey(settings: Settings) -> Huey:
    """Redis storage when a Redis URL is configured, else a SQLite file beside the data;
    either way, a request's id goes with the tasks it queues (``jobs/context.py``)."""
    if settings.redis_url:
        # The expiring storage: its locks and schedule claims can carry a time to live on
        # any Redis (hash-field expiry needs Redis 7.4).
        return with_request_ids(RedisExpireHuey)(
            settings.queue_name, url=settings.redis_url, results=False, utc=True
        )
    path = Path(settings.queue_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return with_request_ids(SqliteHuey)(
        settings.queue_name, filename=str(path), results=False, utc=True
    )


class Jobs:
    """The queue with Gatherly's tasks registered on it."""

    def __init__(
        self, settings: Settings, *, session_factory: sessionmaker[Session] | None = None
    ) -> None:
        self.settings = settings
        self.huey = make_huey(settings)
        metrics.watch_jobs(self.huey)  # job durations by task and outcome
        self._factory = session_factory

        @self.huey.task(name="teams.sync")  # type: ignore[untyped-decorator]
        def teams_sync(run_id: int, webinar_graph_id: str | None = None) -> None:
            report = teams_jobs.run_queued(
                self.session_factory(),
                self.settings,
                run_id=run_id,
                webinar_graph_id=webinar_graph_id,
            )
            log.info("sync run %s: %s", run_id, report.status)

        @self._every_minute("teams.schedule")
        def teams_schedule() -> None:
            # With many consumers (Redis), only one decides and runs the scheduled sync.
            teams_jobs.sweep(self.session_factory(), now=utcnow())  # runs of dead workers
            with self._lock(SCHEDULE_LOCK):
                report = teams_jobs.run_scheduled_if_due(self.session_factory(), self.settings)
            if report is not None:
                log.info("scheduled sync run %s: %s", report.run_id, report.status)

        @self.huey.task(name="teams.notified")  # type: ignore[untyped-decorator]
        def teams_notified() -> None:
            self._sync_notified()

        @self.huey.task(name="teams.subscriptions")  # type: ignore[untyped-decorator]
        def teams_subscriptions() -> None:
            self._manage_subscriptions()

        @self._every_minute("teams.notifications.schedule")
        def teams_notifications_schedule() -> None:
            # Renewals, re-creations and catch-ups; and any notified event whose wake-up
            # was lost (the webhook commits, then queues).
            self._manage_subscriptions()
            self._sync_notified()

        @self.huey.task(name="segments.process")  # type: ignore[untyped-decorator]
        def segments_process() -> None:
            self._refresh_segments(periodic=False)

        @self._every_minute("segments.schedule")
        def segments_schedule() -> None:
            self._refresh_segments(periodic=True)

        @self.huey.task(name="email.send")  # type: ignore[untyped-decorator]
        def email_send(send_id: int) -> None:
            report = email_delivery.run_send(self.session_factory(), self.settings, send_id=send_id)
            log.info(
                "send %s: %s (%s sent, %s failed, %s deferred)",
                send_id,
                report.status,
                report.sent,
                report.failed,
                report.deferred,
            )
            if report.wake_at is not None:
                self.enqueue_send(send_id=send_id, at=report.wake_at)

        @self._every_minute("email.schedule")
        def email_schedule() -> None:
            for send_id in email_delivery.due(self.session_factory()):
                self.email_send(send_id)

        @self.huey.on_startup()  # type: ignore[untyped-decorator]
        def resume_sends() -> None:
            # Sync runs of a worker that died on this machine: given up now (a minute after
            # their last heartbeat for one elsewhere), so they hold back no other sync.
            teams_jobs.sweep(self.session_factory(), now=utcnow())
            # Sends a worker that stopped left unfinished: taken now, or (while another
            # worker's lease on one runs) when the lease runs out.
            for send_id in email_delivery.unfinished(self.session_factory()):
                self.email_send(send_id)

        @self.huey.task(name="journeys.tick")  # type: ignore[untyped-decorator]
        def journeys_tick() -> None:
            self._tick_journeys()

        @self._every_minute("journeys.schedule")
        def journeys_schedule() -> None:
            self._tick_journeys()

        @self.huey.task(name="duplicates.detect")  # type: ignore[untyped-decorator]
        def duplicates_detect(job_id: int) -> None:
            job = duplicate_jobs.run_job(self.session_factory(), job_id)
            if job is not None:
                log.info("duplicate job %s: %s, %s pairs", job_id, job.state, job.pairs)

        @self.huey.task(name="forms.process")  # type: ignore[untyped-decorator]
        def forms_process(submission_id: int) -> None:
            row = capture_forms.process_submission(self.session_factory(), submission_id)
            if row is not None:
                log.info("submission %s: %s (%s)", submission_id, row.state, row.outcome)

        @self._every_minute("forms.schedule")
        def forms_schedule() -> None:
            # Submissions a lost wake-up or a killed worker left pending.
            for submission_id in capture_forms.pending(self.session_factory()):
                self.forms_process(submission_id)

        @self.huey.task(name="linkedin.poll")  # type: ignore[untyped-decorator]
        def linkedin_poll(profile_id: int) -> None:
            # No lock: two polls at once only ask LinkedIn twice; each response is taken once
            # (unique id), and a lock left by a killed worker would stop the profile for good.
            report = linkedin_intake.poll(self.session_factory(), self.settings, profile_id)
            log.info(
                "LinkedIn profile %s: %s taken, %s test leads, %s seen%s",
                profile_id,
                report.taken,
                report.test,
                report.seen,
                f" ({report.error})" if report.error else "",
            )

        @self._every_minute("linkedin.schedule")
        def linkedin_schedule() -> None:
            for profile_id in linkedin_intake.due(self.session_factory(), self.settings):
                self.linkedin_poll(profile_id)

        self.linkedin_poll: Any = linkedin_poll
        self.linkedin_schedule: Any = linkedin_schedule
        self.forms_process: Any = forms_process
        self.forms_schedule: Any = forms_schedule
        self.duplicates_detect: Any = duplicates_detect
        self.journeys_tick: Any = journeys_tick
        self.email_send: Any = email_send
        self.email_schedule: Any = email_schedule
        self.teams_sync: Any = teams_sync
        self.teams_schedule: Any = teams_schedule
        self.teams_notified: Any = teams_notified
        self.teams_subscriptions: Any = teams_subscriptions
        self.teams_notifications_schedule: Any = teams_notifications_schedule
        self.segments_process: Any = segments_process
        self.segments_schedule: Any = segments_schedule

    def _every_minute(self, name: str) -> Callable[[Callable[[], None]], Any]:
        """Register a periodic task run once a minute, however many consumers queue it."""

        def register(fn: Callable[[], None]) -> Any:
            @functools.wraps(fn)
            def once() -> None:
                if self._claim(name):
                    fn()

            return self.huey.periodic_task(crontab(minute="*"), name=name)(once)

        return register

    def _claim(self, name: str) -> bool:
        """True for the first consumer to run periodic task ``name`` this minute.

        The SQLite queue has one consumer, whose scheduler queues each task once; on Redis
        every consumer's scheduler does, at its own second of the minute.
        """
        if not self.settings.redis_url:
            return True
        key = f"periodic.{name}"
        return bool(self.huey.put_if_empty(key, "1", PERIODIC_CLAIM_SECONDS))

    def _lock(self, name: str) -> Any:
        """Huey's task lock; on Redis with a time to live, so that a killed holder's lock
        runs out (on SQLite a starting consumer clears it: see ``consumer``)."""
        ttl = LOCK_TTL_SECONDS if self.settings.redis_url else None
        return self.huey.lock_task(name, ttl)

    def _refresh_segments(self, *, periodic: bool) -> None:
        """Drain the change outbox (and, on the schedule, refresh segments that are due).

        One consumer at a time: a wake-up that finds the lock taken does nothing, since the
        holder drains what it finds and the schedule picks up the rest within a minute.
        """
        scoring = scoring_jobs.ScoringReport()
        try:
            with self._lock(SEGMENT_LOCK):
                report = segment_jobs.process_changes(
                    self.session_factory(),
                    also=(functools.partial(scoring_jobs.handle_changes, report=scoring),),
                )
                # Models that changed, went live, or whose windows moved on: in full.
                age = timedelta(minutes=self.settings.scoring_window_refresh_minutes)
                full = scoring_jobs.rescore_due(self.session_factory(), max_age=age)
                scoring.rescored.extend(full.rescored)
                if periodic:
                    age = timedelta(minutes=self.settings.segment_relative_refresh_minutes)
                    due = segment_jobs.refresh_due(self.session_factory(), max_age=age)
                    report.refreshed.extend(due.refreshed)
        except TaskLockedException:
            return
        for rescored in scoring.rescored:
            log.info(
                "scoring model %s: %s scored, %s changed, %s sales-ready (%.3f s)",
                rescored.model_id,
                rescored.scored,
                rescored.changed,
                rescored.became_ready,
                rescored.seconds,
            )
        if report.changes or scoring.became_ready:
            # New segment members, registrations, attendance and list additions enter
            # live journeys now, not at the next minute.
            self.journeys_tick()
        for result in report.refreshed:
            log.info(
                "segment %s refreshed: +%s -%s = %s (%.3f s)",
                result.segment_id,
                result.added,
                result.removed,
                result.total,
                result.seconds,
            )

    def _sync_notified(self) -> None:
        """Targeted syncs of the events Graph notified (one drain at a time)."""
        try:
            with self._lock(NOTIFIED_LOCK):
                report = notifications.sync_notified(self.session_factory(), self.settings)
        except TaskLockedException:
            return
        for run in report.runs:
            log.info("notified sync run %s: %s", run.run_id, run.status)
        if report.more:  # its time was up: the rest after the jobs waiting meanwhile
            self.teams_notified()

    def _manage_subscriptions(self) -> None:
        """Hold the change-notification subscriptions; poll where some may have been missed."""
        try:
            with self._lock(SUBSCRIPTION_LOCK):
                report = notifications.manage(self.session_factory(), self.settings)
        except TaskLockedException:
            return
        if report.created or report.renewed or report.deleted or report.failed:
            log.info(
                "graph subscriptions: %s created, %s renewed, %s deleted, %s failed",
                report.created,
                report.renewed,
                report.deleted,
                report.failed,
            )
        if report.full_catch_up:
            # Started once no run is going (the flag stays until then: next minute).
            with self.session_factory()() as db:
                if not teams_jobs.running(db, now=utcnow()):
                    self.start_sync(db, webinar_graph_id=None, by_user_id=None)
                    notifications.full_catch_up_started(self.session_factory(), now=utcnow())
        if report.caught_up:
            self.teams_notified()

    def enqueue_notified(self) -> None:
        """Queue the targeted syncs of notified events (the webhook, after its commit)."""
        self.teams_notified()

    def enqueue_subscriptions(self) -> None:
        """Queue a pass of the subscription manager (after a lifecycle notification)."""
        self.teams_subscriptions()

    def _tick_journeys(self) -> None:
        """Advance the live journeys (one worker at a time: the others' wake-ups find the
        lock taken, and the holder's pass covers what they would have done)."""
        try:
            with self._lock(JOURNEY_LOCK):
                report = journey_engine.tick(
                    self.session_factory(), queue=self, batch=self.settings.journey_batch
                )
        except TaskLockedException:
            return
        if report.entered or report.actions or report.completed:
            log.info(
                "journeys: %s entered, %s steps taken, %s completed",
                report.entered,
                report.actions,
                len(report.completed),
            )

    def session_factory(self) -> sessionmaker[Session]:
        """Sessions on the product database, created on first use in the worker (whose
        commits that record data changes then queue a segment refresh)."""
        if self._factory is None:
            self._factory = make_session_factory(make_engine(self.settings.database_url))
            changes.install_waker(self._factory, self.wake_segments)
        return self._factory

    def wake_segments(self) -> None:
        """Queue a drain of the change outbox (called after commits that recorded changes)."""
        try:
            self.segments_process()
        except Exception:  # the periodic drain catches up; a commit must not fail for this
            log.warning("could not queue the segment refresh; the schedule will catch up")

    def enqueue_sync(self, *, run_id: int, webinar_graph_id: str | None = None) -> None:
        """Queue a recorded run for the worker."""
        self.teams_sync(run_id, webinar_graph_id)

    def start_sync(
        self, db: Session, *, webinar_graph_id: str | None, by_user_id: int | None
    ) -> SyncRun:
        """Record a run (one webinar's *Sync now*, or a full sync), commit it so the
        worker can find it, and queue it; the API and the web page both start runs here."""
        run = sync.create_run(
            db,
            kind="webinar" if webinar_graph_id else "full",
            webinar_graph_id=webinar_graph_id,
            by_user_id=by_user_id,
        )
        db.commit()
        self.enqueue_sync(run_id=run.id, webinar_graph_id=webinar_graph_id)
        return run

    def enqueue_poll(self, *, profile_id: int) -> None:
        """Queue a poll of one LinkedIn profile for the worker."""
        self.linkedin_poll(profile_id)

    def enqueue_submission(self, *, submission_id: int) -> None:
        """Queue a stored form submission for the worker."""
        self.forms_process(submission_id)

    def enqueue_duplicates(self, *, job_id: int) -> None:
        """Queue a recorded duplicate detection job for the worker."""
        self.duplicates_detect(job_id)

    def enqueue_send(self, *, send_id: int, at: datetime | None = None) -> None:
        """Queue a send for the worker, now or to run at ``at``."""
        delay = (at - utcnow()).total_seconds() if at is not None else 0.0
        if delay > 0:
            self.email_send.schedule(args=(send_id,), delay=delay)
        else:
            self.email_send(send_id)

    def consumer(
        self,
        *,
        workers: int = 1,
        schedule: bool = True,
        pool: str = "thread",
        shutdown_timeout: float | None = None,
    ) -> Consumer:
        """A consumer running tasks on ``workers`` threads or processes (``pool``) and,
        unless told not to, the schedule.

        SIGTERM (systemd's stop) and SIGINT stop it gracefully: it takes no new task and
        waits for the tasks at hand, up to ``shutdown_timeout`` seconds (then interrupts
        them: every task is idempotent and its work is found again on the database).
        """
        # A worker killed while holding a lock (the journey pass, the segment refresh)
        # would leave it taken: on SQLite (one consumer) a starting consumer clears the
        # locks; on Redis they run out (LOCK_TTL_SECONDS), since other consumers may hold
        # them. Two passes at once are safe, only wasteful (every step is unique in the
        # database).
        return self.huey.create_consumer(
            workers=workers,
            worker_type=pool,
            periodic=schedule,
            flush_locks=not self.settings.redis_url,
            extra_locks=",".join(LOCKS),
            # Idle, the consumer looks for work at least every second (Huey's default lets
            # the wait grow to 10 s): a notified change or a Sync now starts within a second.
            max_delay=1.0,
            graceful_signal="TERM",
            shutdown_timeout=shutdown_timeout,
        )

    def pending(self) -> int:
        """Tasks waiting in the queue."""
        return int(self.huey.pending_count())


def app_jobs(app: Any) -> Jobs:
    """The web app's queue, opened on first use with the app's sessions."""
    jobs: Jobs | None = getattr(app.state, "jobs", None)
    if jobs is None:
        jobs = app.state.jobs = Jobs(app.state.settings, session_factory=app.state.session_factory)
    return jobs
