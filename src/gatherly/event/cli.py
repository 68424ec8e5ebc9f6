"""``gatherly events`` and ``gatherly contacts timeline``: reading events as a user (SPEC T6, T9)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, read_input
from gatherly.contact import imports
from gatherly.contact import service as contact_service
from gatherly.event import service as events
from gatherly.event.models import MarketingEvent

events_app = typer.Typer(help="Marketing events (synced Teams webinars).", no_args_is_help=True)
contacts_app = typer.Typer(help="Contacts.", no_args_is_help=True)
out = Console()


def _when(value: datetime | None, seconds: bool = False) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M") if value else ""


def hms(seconds: int) -> str:
    """A duration as h:mm:ss."""
    return f"{seconds // 3600}:{seconds % 3600 // 60:02}:{seconds % 60:02}"


def _event_dict(e: MarketingEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "name": e.name,
        "status": e.status,
        "event_type": e.event_type,
        "start_at": e.start_at,
        "end_at": e.end_at,
        "time_zone": e.time_zone,
        "organizer_name": e.organizer_name,
        "organizer_email": e.organizer_email,
        "audience": e.audience,
        "source": e.source,
        "external_id": e.external_id,
        "registrant_count": e.registrant_count,
        "attendee_count": e.attendee_count,
        "cancellation_count": e.cancellation_count,
        "description": e.description,
    }


@events_app.command("list")
def events_list(
    as_user: AsOpt,
    status: Annotated[str | None, typer.Option(help="draft, published, canceled or other.")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Text in the event name.")] = None,
    organizer: Annotated[str | None, typer.Option(help="Text in the organizer.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Events the user may read, newest first, with their counts."""
    flt = events.EventFilter(q=q, status=status, organizer=organizer)
    with acting(as_user) as (db, principal):
        found = every_page(
            lambda cursor: events.list_events(
                db=db, principal=principal, flt=flt, cursor=cursor, limit=200
            )
        )
        rows = [_event_dict(e) for e in found]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "start (UTC)", "status", "organizer", "reg.", "att.", "canc.")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            _when(r["start_at"]),
            escape(r["status"]),
            escape(r["organizer_name"]),
            str(r["registrant_count"]),
            str(r["attendee_count"]),
            str(r["cancellation_count"]),
        )
    out.print(table)
    out.print(f"{len(rows)} event(s)")


@events_app.command("show")
def events_show(
    event_id: Annotated[int, typer.Argument(help="Event id.")],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """One event: properties, counts, sessions and who is behind each number."""
    with acting(as_user) as (db, principal):
        data = _event_dict(events.get_event(db=db, principal=principal, event_id=event_id))
        data["sessions"] = [
            {"id": s.id, "subject": s.subject, "start_at": s.start_at, "end_at": s.end_at}
            for s in events.sessions(db=db, principal=principal, event_id=event_id)
        ]
        data["reconciliation"] = dataclasses.asdict(
            events.reconciliation(db=db, principal=principal, event_id=event_id)
        )
        recs, transcripts = events.recordings(db=db, principal=principal, event_id=event_id)
        data["recordings"] = [
            {"id": r.id, "recorded_at": r.recorded_at, "content_url": r.content_url} for r in recs
        ]
        data["transcripts"] = [
            {
                "id": t.id,
                "recording_id": t.recording_id,
                "cues": [{"at_ms": c.start_ms, "speaker": c.speaker, "text": c.text} for c in cues],
            }
            for t, cues in transcripts
        ]
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key not in ("sessions", "reconciliation", "description", "recordings", "transcripts"):
            text = f"{_when(value)} UTC" if isinstance(value, datetime) else value
            out.print(f"{key}: {'' if text is None else text}", markup=False, soft_wrap=True)
    out.print(f"description: {data['description']}", markup=False, soft_wrap=True)
    out.print(f"\nsessions ({len(data['sessions'])}):")
    for s in data["sessions"]:
        out.print(
            f"  {_when(s['start_at'])} – {_when(s['end_at'])}  {s['subject']}",
            markup=False,
            soft_wrap=True,
        )
    out.print(f"\nrecordings: {len(data['recordings'])}, transcripts: {len(data['transcripts'])}")
    for t in data["transcripts"]:
        for cue in t["cues"][:3]:
            out.print(
                f"  [{hms(cue['at_ms'] // 1000)}] {cue['speaker']}: {cue['text']}",
                markup=False,
                soft_wrap=True,
            )
    rec = data["reconciliation"]
    out.print("\ncounts:")
    for key, value in rec["counts"].items():
        out.print(f"  {key}: {value}")
    lists = [(k, rec[k]) for k in ("registrants", "cancellations", "attendees", "no_shows")]
    lists += [(f"status {k}", v) for k, v in rec["other_statuses"].items()]
    lists += [(f"not counted, {k}", v) for k, v in rec["not_counted"].items()]
    for label, people in lists:
        out.print(
            f"\n{label} ({len(people)}): {', '.join(people)}",
            markup=False,
            soft_wrap=True,
        )


@contacts_app.command("import")
def contacts_import(
    file: Annotated[Path, typer.Argument(help="CSV with a header line ('-': standard input).")],
    as_user: AsOpt,
    leads: Annotated[bool, typer.Option("--leads", help="Import leads, not contacts.")] = False,
    on_match: Annotated[
        str, typer.Option(help="update or skip a row that matches a record the user may read.")
    ] = "update",
    as_json: JsonOpt = False,
) -> None:
    """Import contacts (or leads) from CSV, matched by the duplicate detection rules; every
    row's outcome is printed. A bad file changes nothing."""
    text = read_input(file)
    kind = contact_service.LEAD if leads else contact_service.CONTACT
    with acting(as_user) as (db, principal):
        report = imports.import_csv(
            db=db,
            principal=principal,
            kind=kind,
            text=text,
            on_match=on_match,  # type: ignore[arg-type]
        )
    if as_json:
        print_json(
            {"record_type": report.record_type, "totals": report.totals, "rows": report.rows}
        )
        return
    for row in report.rows:
        if row.outcome == imports.REFUSED:
            where = f" ({row.field})" if row.field else ""
            out.print(f"line {row.line}: refused{where}: {row.message}", markup=False)
    totals = report.totals
    out.print(
        f"{totals['created']} created, {totals['matched']} matched and updated, "
        f"{totals['skipped']} skipped, {totals['refused']} refused",
        markup=False,
    )


@contacts_app.command("timeline")
def contacts_timeline(
    contact_id: Annotated[int, typer.Argument(help="Contact id.")],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """A contact's webinars: date, registration, first join, last leave, time attended."""
    with acting(as_user) as (db, principal):
        entries = events.timeline(db=db, principal=principal, contact_id=contact_id)
    if as_json:
        print_json(entries)
        return
    if not entries:
        out.print(f"contact {contact_id} has no webinar participation")
        return
    for e in entries:
        out.print(
            f"\n{_when(e.event_start_at)} UTC  {e.event_name} (event {e.event_id})",
            markup=False,
            soft_wrap=True,
        )
        out.print(f"  registration: {e.registration_status or 'not registered'}")
        if not e.intervals:
            out.print("  did not attend")
            continue
        out.print(
            f"  joined {_when(e.first_join_at, True)}, left {_when(e.last_leave_at, True)},"
            f" attended {hms(e.total_seconds)}",
        )
        for i in e.intervals:
            out.print(
                f"    {_when(i.join_at, True)} – {_when(i.leave_at, True)}"
                f"  {hms(i.duration_seconds)}"
            )
