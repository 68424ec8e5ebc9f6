"""The ``gatherly`` command: the database, the server, the demo and the emulator; every domain
adds its own sub-app (``org/cli.py``: users, BUs, roles, features, access, audit, tokens)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

import gatherly.models  # noqa: F401 - registers every record type
from gatherly.capture.cli import app as duplicates_app
from gatherly.capture.cli import forms_app
from gatherly.core import backup, crypto, migrate
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, session_scope, transaction
from gatherly.core.exceptions import GatherlyError
from gatherly.email.cli import app as email_app
from gatherly.event.cli import contacts_app, events_app
from gatherly.jobs.cli import worker as worker_command
from gatherly.journey.cli import app as journeys_app
from gatherly.linkedin.cli import app as linkedin_app
from gatherly.org import defaults
from gatherly.org.cli import (
    access_app,
    audit_app,
    bu_app,
    features_app,
    roles_app,
    tokens_app,
    users_app,
)
from gatherly.report.cli import app as reports_app
from gatherly.scoring.cli import app as scoring_app
from gatherly.secret_key_cli import app as secret_key_app
from gatherly.segment.cli import lists_app, segments_app
from gatherly.teams.cli import app as teams_app

app = typer.Typer(
    help="Gatherly: Teams webinars into marketing events, with BU security.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(bu_app, name="bu")
app.add_typer(roles_app, name="roles")
app.add_typer(access_app, name="access")
app.add_typer(features_app, name="features")
app.add_typer(teams_app, name="teams")
app.add_typer(events_app, name="events")
app.add_typer(contacts_app, name="contacts")
app.add_typer(segments_app, name="segments")
app.add_typer(lists_app, name="lists")
app.add_typer(email_app, name="email")
app.add_typer(journeys_app, name="journeys")
app.add_typer(duplicates_app, name="duplicates")
app.add_typer(forms_app, name="forms")
app.add_typer(linkedin_app, name="linkedin")
app.add_typer(scoring_app, name="scoring")
app.add_typer(reports_app, name="reports")
app.add_typer(audit_app, name="audit")
app.add_typer(tokens_app, name="tokens")
app.add_typer(secret_key_app, name="secret-key")
app.command(name="worker")(worker_command)

out = Console()


@contextmanager
def session() -> Iterator[Session]:
    """A committed-on-success session on the configured database."""
    with session_scope(Settings().database_url) as db:
        yield db


def upgrade_database(settings: Settings) -> None:
    """Run migrations, then make sure the root BU and built-in roles exist."""
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        with transaction(make_session_factory(engine)) as db:
            defaults.ensure_defaults(db)
    finally:
        engine.dispose()


# ------------------------------------------------------------------ db, serve, demo


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply migrations and create the root BU and built-in roles (idempotent)."""
    settings = Settings()
    upgrade_database(settings)
    out.print(f"database is up to date: {make_engine(settings.database_url).url!r}", markup=False)


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite FILE if it exists.")] = False,
) -> None:
    """Back up the database to FILE (SQLite: online backup, safe while the server runs;
    PostgreSQL: pg_dump's custom format)."""
    done = backup.backup(database_url=Settings().database_url, path=file, force=force)
    out.print(
        f"backed up the {done.backend} database to {done.path} "
        f"({done.size:,} bytes, revision {done.revision})",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `gatherly db backup`.")],
) -> None:
    """Replace the database with the backup in FILE (its revision must be one this release
    knows); stop the server and workers first."""
    done = backup.restore(database_url=Settings().database_url, path=file)
    then = (
        f"; the code's head is {done.head}: run `gatherly db upgrade`"
        if done.behind
        else " (the code's head)"
    )
    out.print(
        f"restored the {done.backend} database from {done.path}: revision {done.revision}{then}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="API processes (about one per core; see docs/deploy.md)."),
    ] = 1,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Run a job worker in this process (Sync now, scheduled syncs); turn it off "
            "when separate `gatherly worker` processes consume the queue.",
        ),
    ] = True,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade/--no-upgrade",
            help="Upgrade the database first; with --no-upgrade, refuse to start on a "
            "database whose schema is not this release's (run `gatherly db upgrade` once "
            "before starting several servers).",
        ),
    ] = True,
    grace: Annotated[
        float,
        typer.Option(
            min=0,
            help="On SIGTERM or Ctrl-C, seconds to let requests in flight (and the worker's "
            "tasks at hand) finish.",
        ),
    ] = 30.0,
) -> None:
    """Serve the API (docs at /api/v1/docs) and the web UI and, by default, a worker."""
    from gatherly.core import logs
    from gatherly.core.background import check_port

    check_port(host, port)
    settings = Settings()
    logs.configure(settings)  # first: the key's warnings come out as log lines too
    # The secret key, once: a weak one is warned about, the old public default refused;
    # a generated key file exists before the API processes start and read it.
    settings = crypto.resolve(settings)
    if not upgrade:
        engine = make_engine(settings.database_url)
        try:
            current, why = migrate.current_matches_head(engine)
        finally:
            engine.dispose()
        if not current:
            raise GatherlyError(f"not starting: {why}")
    run_server(
        settings, host=host, port=port, worker=worker, workers=workers, grace=grace, upgrade=upgrade
    )


def run_server(
    settings: Settings,
    *,
    host: str,
    port: int,
    worker: bool,
    workers: int = 1,
    grace: float = 30.0,
    upgrade: bool = True,
) -> None:
    """Upgrade the database, then serve the app (and a worker) with these settings.

    With several ``workers``, each API process builds the app from the environment's
    settings (``gatherly.app:create_app``), as ``serve`` read them.
    """
    import uvicorn

    from gatherly.app import create_app
    from gatherly.core import logs, metrics, serving
    from gatherly.jobs.queue import Jobs

    logs.configure(settings)
    # Before any process starts or any metric is recorded: one scrape sums them all.
    metrics.prepare_processes(settings, processes=workers, role="serve")
    if upgrade:
        upgrade_database(settings)
    consumer = Jobs(settings).consumer(workers=2, shutdown_timeout=grace) if worker else None
    if consumer is not None:
        consumer.start()
    options: dict[str, Any] = {
        "log_level": settings.log_level.lower(),
        "log_config": logs.uvicorn_config(settings),  # also for each of several processes
        "access_log": False,  # the app writes one access line a request (core/logs.py)
        "timeout_graceful_shutdown": round(grace),
    }
    try:
        if workers > 1:  # a socket each, on one port (core/serving.py)
            serving.run(host=host, port=port, processes=workers, options=options)
        else:
            app = create_app(settings)
            serving.settle(app)
            uvicorn.run(app, host=host, port=port, **options)
    finally:
        if consumer is not None:
            consumer.stop(graceful=True)


@app.command()
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the worker and the server.")
    ] = True,
    fixture: Annotated[
        Path, typer.Option(help="Sample Teams tenant for the bundled Graph emulator.")
    ] = Path("examples/sample-tenant.json"),
    emulator_port: Annotated[
        int, typer.Option(help="Port of the Graph emulator (0: any free port).")
    ] = 8765,
    linkedin_fixture: Annotated[
        Path, typer.Option(help="Sample LinkedIn data for the bundled LinkedIn emulator.")
    ] = Path("examples/linkedin-sample.json"),
    linkedin_port: Annotated[
        int, typer.Option(help="Port of the LinkedIn emulator (0: any free port).")
    ] = 8766,
) -> None:
    """Seed the sample organisation, sync the emulated Teams tenant, start the worker and serve."""
    from contextlib import ExitStack

    from gatherly import demo as sample
    from gatherly.core.background import check_port, serve_in_thread
    from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture
    from gatherly.segment import jobs as segment_jobs
    from gatherly.teams.cli import print_report, run_with_progress

    if serve_after:  # before seeding: a taken port would only show once everything ran
        check_port(host, port)
    settings = crypto.resolve(Settings())  # generates var/secret.key on the first run
    upgrade_database(settings)
    tenant = load_fixture(fixture)
    with session() as db:
        sample.seed(db)
        tokens = sample.issue_tokens(db)
        total = sample.contact_total(db)
    base = f"http://{host}:{port}"
    table = Table(title=f"Sample users ({total} contacts in all)")
    for col in ("user", "role", "business unit"):
        table.add_column(col)
    table.add_column("API token", no_wrap=True, overflow="ignore")
    for t in tokens:
        table.add_row(t.username, t.role, t.business_unit, t.token)
    Console(width=200).print(table)
    by_user = {t.username: t for t in tokens}
    out.print(
        f"Web UI: open {base}/ and sign in as any sample user above (admin is the system "
        "administrator; gustav sees only Germany) with the password 'gatherly-demo'."
    )
    out.print("How many contacts each user may read — the same list, four security roles:")
    for name in ("olivia", "emma", "gustav", "ulla"):
        t = by_user[name]
        out.print(f"  # {name}: {t.role} in {t.business_unit}", markup=False)
        out.print(
            f"  curl -s -H 'Authorization: Bearer {t.token}' {base}/api/v1/contacts/count",
            soft_wrap=True,
        )
    with ExitStack() as stack:
        try:
            emulator = stack.enter_context(
                serve_in_thread(create_emulator_app(EmulatorState(tenant)), port=emulator_port)
            )
        except (OSError, RuntimeError):  # the port is taken: any free one will do
            emulator = stack.enter_context(
                serve_in_thread(create_emulator_app(EmulatorState(tenant)))
            )
        engine = make_engine(settings.database_url)
        stack.callback(engine.dispose)
        factory = make_session_factory(engine)
        with transaction(factory) as db:
            sample.connect_sample_tenant(db, settings, fixture=tenant, emulator_url=emulator)
        out.print(
            f"\nMicrosoft Teams: the sample tenant is served by the Graph emulator at {emulator}"
        )
        run_with_progress(factory, settings)  # discovers organizers and their webinars
        with transaction(factory) as db:
            ticked = sample.tick_everything(db)
        out.print(f"Syncing {ticked} webinars and town halls into marketing events …")
        print_report(run_with_progress(factory, settings))
        out.print(
            "\nMarketing events as Gustav (Marketer, Germany, where the synced webinars land)"
            " sees them:"
        )
        out.print(
            f"  curl -s -H 'Authorization: Bearer {by_user['gustav'].token}' {base}/api/v1/events",
            soft_wrap=True,
        )
        with transaction(factory) as db:
            samples = sample.sample_segments(db)
        segment_jobs.process_changes(factory)
        out.print("\nSegments (materialised; members and counts differ per viewer):")
        for item in samples:
            out.print(f"  #{item.id} {item.name} (owner {item.owner})", markup=False)
        first = samples[0].id
        for name in ("olivia", "gustav"):
            out.print(
                f"  curl -s -H 'Authorization: Bearer {by_user[name].token}' "
                f"{base}/api/v1/segments/{first}/members",
                soft_wrap=True,
            )
        mail = settings
        if "public_url" not in settings.model_fields_set:  # links in mail lead to this server
            mail = mail.model_copy(update={"public_url": base})
        if settings.smtp_url is None:  # no mail server configured: catch what is sent here
            mail = mail.model_copy(
                update={
                    "smtp_url": SecretStr(stack.enter_context(_catcher(settings.mail_catcher_dir))),
                    "mail_catcher_dir": settings.mail_catcher_dir or Path("var/mail"),
                    "smtp_rate_per_second": 200.0,
                }
            )
        with transaction(factory) as db:
            message_id, sent = sample.sample_email(db, mail)
        out.print(
            f"\nEmail: the message “{sample.DEMO_MESSAGE}” {'goes' if sent else 'went'} to the "
            f"list “{sample.DEMO_LIST}” ({base}/email/messages/{message_id}).",
            markup=False,
            soft_wrap=True,
        )
        if mail.mail_catcher_dir is not None and serve_after:
            out.print(
                f"  It is caught on this machine, not delivered: sign in as admin and open "
                f"{base}/mail-catcher to read it as the recipients would.",
                soft_wrap=True,
            )
        with transaction(factory) as db:
            model_id, board_id = sample.sample_scoring(db)
        out.print(
            f"\nLead scoring: “{sample.DEMO_MODEL}” scores every contact ({base}/scoring/"
            f"{model_id}); reports and a dashboard: {base}/reports, {base}/dashboards/{board_id}.",
            markup=False,
            soft_wrap=True,
        )
        with transaction(factory) as db:
            slug = sample.sample_form(db)
        out.print(
            f"\nForms: a sign-up page anyone can fill in is at {base}/p/{slug}; what people "
            "send becomes contacts and leads owned by gustav (sign in as gustav: Forms).",
            soft_wrap=True,
        )
        if settings.linkedin_client_id is None:  # no LinkedIn app: the bundled emulator
            linkedin = _linkedin_emulator(stack, linkedin_fixture, linkedin_port)
            mail = mail.model_copy(update=linkedin)
            out.print(
                f"LinkedIn Lead Gen: the emulator at {linkedin['linkedin_api_url']} plays "
                f"LinkedIn. Sign in, open {base}/linkedin, Connect and allow as Keiko Tanaka: "
                "her sample leads arrive within a minute, owned by you.",
                soft_wrap=True,
            )
        organizer = sample.DEMO_ORGANIZER
        out.print(
            f"{organizer} is also a Teams organizer of the sample tenant: signed in as "
            f"{organizer}, {base}/webinars shows her webinars, each with Sync now."
        )
        out.print("Organizer statuses and the access-policy remedy: gatherly teams organizers")
        out.print(f"API docs: {base}/api/v1/docs")
        if serve_after:
            out.print("Worker: starting with the server (scheduled refreshes, Sync now, sends).")
            run_server(mail, host=host, port=port, worker=True)


def _linkedin_emulator(stack: Any, fixture: Path, port: int) -> dict[str, Any]:
    """Serve the bundled LinkedIn emulator; the settings that point Gatherly at it."""
    from gatherly.core.background import serve_in_thread
    from gatherly.linkedin_emulator import LinkedInState, create_linkedin_app, load_fixture

    data = load_fixture(fixture)
    try:
        url = stack.enter_context(
            serve_in_thread(create_linkedin_app(LinkedInState(data)), port=port)
        )
    except (OSError, RuntimeError):  # the port is taken: any free one will do
        url = stack.enter_context(serve_in_thread(create_linkedin_app(LinkedInState(data))))
    app = data["application"]
    return {
        "linkedin_client_id": app["client_id"],
        "linkedin_client_secret": SecretStr(app["client_secret"]),
        "linkedin_auth_url": url,
        "linkedin_api_url": url,
    }


@contextmanager
def _catcher(directory: Path | None) -> Iterator[str]:
    """The bundled mail catcher on port 8025 (any free port when it is taken)."""
    from gatherly.core.background import free_port
    from gatherly.email import catcher

    with catcher.running(directory or Path("var/mail"), port=free_port(preferred=8025)) as url:
        yield url


@app.command("mail-catcher")
def mail_catcher(
    port: Annotated[int, typer.Option(help="SMTP port to listen on (loopback).")] = 8025,
    directory: Annotated[
        Path, typer.Option("--dir", help="Where caught messages are kept (.eml files).")
    ] = Path("var/mail"),
) -> None:
    """Run the local mail catcher: an SMTP server on 127.0.0.1 that keeps every message and
    delivers none. Point GATHERLY_SMTP_URL and GATHERLY_MAIL_CATCHER_DIR at it."""
    import threading

    from gatherly.email import catcher

    with catcher.running(directory, port=port) as url:
        out.print(f"mail catcher on {url}, keeping messages in {directory}/", markup=False)
        out.print(
            f"  export GATHERLY_SMTP_URL='{url}' GATHERLY_MAIL_CATCHER_DIR={directory}",
            markup=False,
            soft_wrap=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            return


@app.command("graph-emulator")
def graph_emulator(
    fixture: Annotated[
        Path,
        typer.Option(help="Fixture JSON: tenant, applications, users, webinars, townhalls."),
    ],
    port: Annotated[int, typer.Option(help="TCP port.")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the bundled Microsoft Graph emulator on a fixture (token endpoint, /v1.0, /_emulator)."""
    import uvicorn

    from gatherly.graph_emulator import EmulatorState, create_emulator_app, load_fixture

    state = EmulatorState(load_fixture(fixture))
    tenant = state.tenant["id"]
    base = f"http://{host}:{port}"
    out.print(f"Graph emulator for tenant {tenant} on {base}", markup=False, soft_wrap=True)
    out.print(f"  token endpoint: {base}/{tenant}/oauth2/v2.0/token", markup=False, soft_wrap=True)
    uvicorn.run(create_emulator_app(state), host=host, port=port, log_level="warning")


def main() -> None:
    """Entry point: run the app, turning expected errors into one line and exit code 1."""
    err = Console(stderr=True)
    try:
        app()
    except GatherlyError as exc:
        where = f" ({exc.field})" if exc.field else ""
        err.print(f"error{where}: {exc.message}", highlight=False, markup=False, soft_wrap=True)
        raise SystemExit(1) from None
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for problem in exc.errors():  # a setting from the environment or .env
            name = "GATHERLY_" + "__".join(str(part) for part in problem["loc"]).upper()
            err.print(
                f"error ({name}): {problem['msg']}", highlight=False, markup=False, soft_wrap=True
            )
        raise SystemExit(1) from None
    except SQLAlchemyError as exc:
        err.print(
            f"database error: {str(exc).splitlines()[0]}",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        raise SystemExit(1) from None
