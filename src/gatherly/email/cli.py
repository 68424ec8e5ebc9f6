"""``gatherly email``: content settings and messages as a user (SPEC M, B14).

Every command acts as the ``--as`` user through ``email.service``, as the API and the web
pages do, so the access engine decides what may be read and changed.
"""

from __future__ import annotations

import dataclasses
import sys
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, read_input, validated
from gatherly.core.config import Settings
from gatherly.core.ids import MAX_ID
from gatherly.email import audience as audiences
from gatherly.email import bounces, insights, sends, service
from gatherly.email import schemas as s
from gatherly.org import service as org_service

app = typer.Typer(
    help="Email marketing: content settings, messages, sends, insights, bounces.",
    no_args_is_help=True,
)
settings_app = typer.Typer(
    help="Content settings: sender, reply-to, postal address.", no_args_is_help=True
)
messages_app = typer.Typer(help="Email messages: write, check, preview.", no_args_is_help=True)
app.add_typer(settings_app, name="settings")
app.add_typer(messages_app, name="messages")
sends_app = typer.Typer(help="Sends: a ready message to segments and lists.", no_args_is_help=True)
bounces_app = typer.Typer(help="Bounces and complaints that come back.", no_args_is_help=True)
app.add_typer(sends_app, name="sends")
app.add_typer(bounces_app, name="bounces")
out = Console()
IdArg = Annotated[int, typer.Argument(help="Id.", min=1, max=MAX_ID)]


class DefaultFor(StrEnum):
    """Whose default a content setting is."""

    business_unit = "business_unit"
    organization = "organization"
    none = "none"


def _read(path: Path | None, field: str) -> str | None:
    """A file's text (``-``: standard input); ValidationFailed naming the option."""
    return None if path is None else read_input(path, field=field)


def _public_url() -> str:
    return Settings().public_url


def _setting(row: Any) -> dict[str, Any]:
    return s.ContentSettingOut.model_validate(row).model_dump(mode="json")


def _message(row: Any) -> dict[str, Any]:
    return s.MessageOut.model_validate(row).model_dump(mode="json")


# ------------------------------------------------------------------ content settings


@settings_app.command("list")
def settings_list(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The content settings the user may read, newest first."""
    with acting(as_user) as (db, principal):
        rows = every_page(
            lambda cursor: service.list_content_settings(
                db=db, principal=principal, cursor=cursor, limit=500
            )
        )
        data = [_setting(r) for r in rows]
    if as_json:
        print_json(data)
        return
    table = Table("id", "name", "sender", "default for", "postal address")
    for r in data:
        sender = f"{r['sender_name']} <{r['sender_email']}>".strip()
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            escape(sender),
            r["default_for"] or "",
            escape(r["postal_address"]),
        )
    out.print(table)


@settings_app.command("create")
def settings_create(
    name: Annotated[str, typer.Argument(help="What to call it, e.g. 'Sales EU'.")],
    as_user: AsOpt,
    sender: Annotated[str, typer.Option(help="The From address.")],
    sender_name: Annotated[str, typer.Option(help="The From name.")] = "",
    reply_to: Annotated[str | None, typer.Option(help="Where replies go.")] = None,
    postal_address: Annotated[str, typer.Option(help="Shown in every message's footer.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a content setting owned by the user."""
    body = validated(
        s.ContentSettingIn,
        name=name,
        sender_email=sender,
        sender_name=sender_name,
        reply_to=reply_to,
        postal_address=postal_address,
    )
    with acting(as_user) as (db, principal):
        data = _setting(service.create_content_setting(db=db, principal=principal, setting_in=body))
    if as_json:
        print_json(data)
        return
    out.print(f"created content setting {name!r} (id {data['id']})", markup=False)


@settings_app.command("default")
def settings_default(
    setting_id: IdArg,
    default_for: Annotated[
        DefaultFor,
        typer.Option(
            "--for",
            help="business_unit (only while business unit scoping is on), organization, or "
            "none to unset.",
        ),
    ],
    as_user: AsOpt,
) -> None:
    """Make a content setting the default of its business unit or of the organisation."""
    chosen = None if default_for == DefaultFor.none else default_for.value
    with acting(as_user) as (db, principal):
        row = service.set_default(
            db=db, principal=principal, setting_id=setting_id, default_for=chosen
        )
        name = row.name
    said = f"the default for its {chosen.replace('_', ' ')}" if chosen else "no longer a default"
    out.print(f"content setting {name!r} is {said}", markup=False)


# ------------------------------------------------------------------ messages

HtmlOpt = Annotated[
    Path | None, typer.Option("--html-file", help="The HTML body ('-': standard input).")
]
TextOpt = Annotated[
    Path | None,
    typer.Option("--text-file", help="The plain-text part; without it, made from the HTML."),
]


@messages_app.command("list")
def messages_list(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The messages the user may read, newest first."""
    with acting(as_user) as (db, principal):
        fetch = partial(service.list_messages, db=db, principal=principal, limit=500)
        data = [_message(r) for r in every_page(lambda cursor: fetch(cursor=cursor))]
    if as_json:
        print_json(data)
        return
    table = Table("id", "name", "state", "subject")
    for r in data:
        table.add_row(str(r["id"]), escape(r["name"]), r["state"], escape(r["subject"]))
    out.print(table)


@messages_app.command("create")
def messages_create(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    as_user: AsOpt,
    subject: Annotated[
        str, typer.Option(help="The subject; may use {{ contact.first_name }}.")
    ] = "",
    preheader: Annotated[str, typer.Option(help="The line inboxes show after it.")] = "",
    html_file: HtmlOpt = None,
    text_file: TextOpt = None,
    content_setting: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_ID,
            help="Its content setting (default: the business unit's or the organisation's).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a draft message owned by the user."""
    body = validated(
        s.MessageIn,
        name=name,
        subject=subject,
        preheader=preheader,
        html=_read(html_file, "html-file") or "",
        text=_read(text_file, "text-file"),
        content_setting_id=content_setting,
    )
    with acting(as_user) as (db, principal):
        data = _message(service.create_message(db=db, principal=principal, message_in=body))
    if as_json:
        print_json(data)
        return
    out.print(f"created draft message {name!r} (id {data['id']})", markup=False)


@messages_app.command("check")
def messages_check(message_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """What stands between a message and ready; exits 1 while anything does."""
    with acting(as_user) as (db, principal):
        setting, problems = service.check(
            db=db, principal=principal, message_id=message_id, public_url=_public_url()
        )
        setting_id = setting.id if setting is not None else None
    if as_json:
        print_json(
            {
                "ready": not problems,
                "content_setting_id": setting_id,
                "problems": [{"field": p.field, "message": p.message} for p in problems],
            }
        )
    elif problems:
        for p in problems:
            out.print(f"{p.field}: {p.message}", markup=False)
    else:
        out.print(f"ready to send (content setting {setting_id})", markup=False)
    if problems:
        raise typer.Exit(1)


@messages_app.command("ready")
def messages_ready(message_id: IdArg, as_user: AsOpt) -> None:
    """Check a message and make it ready to send."""
    with acting(as_user) as (db, principal):
        row = service.make_ready(
            db=db, principal=principal, message_id=message_id, public_url=_public_url()
        )
        name = row.name
    out.print(f"message {name!r} is ready", markup=False)


class Part(StrEnum):
    """Which part of a rendered message to print."""

    text = "text"
    html = "html"


@messages_app.command("preview")
def messages_preview(
    message_id: IdArg,
    as_user: AsOpt,
    contact: Annotated[int, typer.Option(min=1, max=MAX_ID, help="The contact to render for.")],
    part: Annotated[Part, typer.Option(help="text or html.")] = Part.text,
) -> None:
    """The message as one contact the user may read would receive it."""
    with acting(as_user) as (db, principal):
        rendered = service.preview(
            db=db,
            principal=principal,
            message_id=message_id,
            contact_id=contact,
            public_url=_public_url(),
        )
    out.print(f"Subject: {rendered.subject}", markup=False)
    if rendered.preheader:
        out.print(f"Preheader: {rendered.preheader}", markup=False)
    out.print("", markup=False)
    sys.stdout.write(rendered.text if part == Part.text else rendered.html + "\n")


# ------------------------------------------------------------------ audience


@app.command("audience")
def audience(
    as_user: AsOpt,
    segment: Annotated[
        list[int] | None, typer.Option(min=1, max=MAX_ID, help="A segment (repeatable).")
    ] = None,
    list_: Annotated[
        list[int] | None,
        typer.Option("--list", min=1, max=MAX_ID, help="A marketing list (repeatable)."),
    ] = None,
    who: Annotated[bool, typer.Option("--who", help="Name the suppressed contacts.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Who a send to these segments and lists would reach, among the contacts the user may
    read, and who is suppressed and why."""
    with acting(as_user) as (db, principal):
        found = audiences.audience(
            db=db, principal=principal, segment_ids=segment or [], list_ids=list_ or []
        )
        people = []
        if who:
            rows = every_page(
                lambda cursor: audiences.audience_people(
                    db=db,
                    principal=principal,
                    segment_ids=segment or [],
                    list_ids=list_ or [],
                    cursor=cursor,
                    limit=500,
                )
            )
            people = [
                {"contact_id": p.contact.id, "email": p.contact.email, "reason": p.reason}
                for p in rows
            ]
    data = {**dataclasses.asdict(found), "people": people}
    if as_json:
        print_json(data)
        return
    out.print(
        f"{found.receiving} of {found.total} would receive it; "
        f"{found.total - found.receiving} suppressed",
        markup=False,
    )
    for reason, count in found.suppressed.items():
        out.print(f"  {count} {audiences.REASONS[reason]} ({reason})", markup=False)
    for p in people:
        out.print(f"  #{p['contact_id']} {p['email'] or '(no email)'}: {p['reason']}", markup=False)


@messages_app.command("test")
def messages_test(
    message_id: IdArg,
    as_user: AsOpt,
    to: Annotated[str, typer.Option(help="The address to send the test copy to.")],
    contact: Annotated[
        int | None,
        typer.Option(min=1, max=MAX_ID, help="Personalise for this contact (default: a sample)."),
    ] = None,
) -> None:
    """Send one test copy of a message to an address now; exits 1 if it was not accepted."""
    body = validated(s.TestSendIn, to=to, contact_id=contact)
    with acting(as_user) as (db, principal):
        result = sends.send_test(
            db=db,
            principal=principal,
            settings=Settings(),
            message_id=message_id,
            to=body.to,
            contact_id=body.contact_id,
        )
    out.print(f"{result.to}: {result.status} ({result.detail})", markup=False)
    if result.status != "sent":
        raise typer.Exit(1)


# ------------------------------------------------------------------ sends


def _send(row: Any) -> dict[str, Any]:
    return s.SendOut.model_validate(row).model_dump(mode="json")


SegmentOpt = Annotated[
    list[int] | None, typer.Option("--segment", min=1, max=MAX_ID, help="A segment (repeatable).")
]
ListOpt = Annotated[
    list[int] | None,
    typer.Option("--list", min=1, max=MAX_ID, help="A marketing list (repeatable)."),
]


@sends_app.command("create")
def sends_create(
    as_user: AsOpt,
    message: Annotated[int, typer.Option(min=1, max=MAX_ID, help="The ready message.")],
    segment: SegmentOpt = None,
    list_: ListOpt = None,
    at: Annotated[
        str | None,
        typer.Option(help="When, with its zone (2026-12-24T09:00:00+01:00); default: now."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a ready message to segments and lists; the worker (gatherly worker) delivers it."""
    from gatherly.jobs.queue import Jobs

    body = validated(
        s.SendIn,
        message_id=message,
        segment_ids=segment or [],
        list_ids=list_ or [],
        scheduled_at=at,
    )
    with acting(as_user) as (db, principal):
        row = sends.create_send(
            db=db,
            principal=principal,
            message_id=body.message_id,
            segment_ids=body.segment_ids,
            list_ids=body.list_ids,
            scheduled_at=body.scheduled_at,
            queue=Jobs(Settings()),
        )
        data = _send(row)
    if as_json:
        print_json(data)
        return
    out.print(f"send {data['id']} scheduled for {data['scheduled_at']}", markup=False)


@sends_app.command("list")
def sends_list(
    as_user: AsOpt,
    message: Annotated[int | None, typer.Option(min=1, max=MAX_ID, help="Of this message.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """The sends the user may read, newest first."""
    with acting(as_user) as (db, principal):
        fetch = partial(sends.list_sends, db=db, principal=principal, message_id=message, limit=500)
        data = [_send(r) for r in every_page(lambda cursor: fetch(cursor=cursor))]
    if as_json:
        print_json(data)
        return
    table = Table("id", "message", "state", "scheduled at", "recipients")
    for r in data:
        table.add_row(
            str(r["id"]),
            str(r["message_id"]),
            r["state"],
            r["scheduled_at"],
            str(r["recipients"] or ""),
        )
    out.print(table)


@sends_app.command("show")
def sends_show(send_id: IdArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """A send and its deliveries by state."""
    with acting(as_user) as (db, principal):
        found = sends.progress(db=db, principal=principal, send_id=send_id)
        data = {"send": _send(found.send), "states": found.states, "reasons": found.reasons}
    if as_json:
        print_json(data)
        return
    send = data["send"]
    out.print(f"send {send['id']}: {send['state']} {send['error']}".rstrip(), markup=False)
    for state, n in sorted(data["states"].items()):
        out.print(f"  {state}: {n}", markup=False)
    for reason, n in sorted(data["reasons"].items()):
        out.print(f"    {reason}: {n}", markup=False)


@sends_app.command("cancel")
def sends_cancel(send_id: IdArg, as_user: AsOpt) -> None:
    """Stop a send: what was not sent yet is not sent."""
    with acting(as_user) as (db, principal):
        sends.cancel_send(db=db, principal=principal, send_id=send_id)
    out.print(f"send {send_id} cancelled", markup=False)


# ------------------------------------------------------------------ insights


@app.command("insights")
def insights_command(
    as_user: AsOpt,
    message: Annotated[int | None, typer.Option(min=1, max=MAX_ID, help="A message.")] = None,
    send: Annotated[int | None, typer.Option(min=1, max=MAX_ID, help="One send.")] = None,
    who: Annotated[
        insights.Kind | None,
        typer.Option(help="Write who opened (clicked, …) as CSV instead of the counts."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The counts of a message or a send; with --who, who did it as CSV (contacts the user
    may not read are anonymous)."""
    from gatherly.core.db import make_engine, make_session_factory

    with acting(as_user) as (db, principal):
        if who is not None:
            engine = make_engine(Settings().database_url)
            try:
                export = insights.export_people(
                    db=db,
                    principal=principal,
                    kind=who,
                    message_id=message,
                    send_id=send,
                    session_factory=make_session_factory(engine),
                )
                for chunk in export.chunks:
                    sys.stdout.write(chunk.replace("\r\n", "\n"))
            finally:
                engine.dispose()
            return
        found = insights.insights(db=db, principal=principal, message_id=message, send_id=send)
        data = s.InsightsOut.model_validate(found).model_dump(mode="json")
    if as_json:
        print_json(data)
        return

    def rate(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    out.print(
        f"{data['sent']} sent, {data['delivered']} delivered, {data['hard_bounces']} hard and "
        f"{data['soft_bounces']} soft bounces, {data['suppressed']} suppressed",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"opened by {data['opened']} ({rate(data['open_rate'])}; {data['opens']} opens, "
        f"{data['machine_opens']} by machines), clicked by {data['clicked']} "
        f"({rate(data['click_rate'])}; {data['clicks']} clicks)",
        markup=False,
        soft_wrap=True,
    )
    out.print(
        f"{data['unsubscribed']} unsubscribed, {data['complaints']} complaints",
        markup=False,
        soft_wrap=True,
    )
    for link in data["links"]:
        out.print(f"  {link['clicks']:>6} {link['unique']:>6}  {link['url']}", markup=False)


# ------------------------------------------------------------------ bounces


@bounces_app.command("import")
def bounces_import(
    file: Annotated[Path, typer.Argument(help="A bounce or feedback report (.eml) or an mbox.")],
    as_user: AsOpt,
) -> None:
    """Read bounce reports (RFC 3464 and older formats) and spam complaints (RFC 5965):
    record each against its delivery once and suppress hard bounces and complainers.
    System administrators only."""
    with acting(as_user) as (db, principal):
        org_service.require_admin(principal, "import bounces and complaints")
        done = bounces.import_reports(
            db=db, settings=Settings(), reports=bounces.read_reports(file), source="import"
        )
    out.print(
        f"{done.recorded} recorded, {done.repeated} already known, {done.unmatched} about "
        f"addresses we did not send to, {len(done.suppressed)} addresses suppressed, "
        f"{done.unreadable} messages that are not reports, {done.unsubscribed} unsubscribe "
        "requests",
        markup=False,
        soft_wrap=True,
    )
