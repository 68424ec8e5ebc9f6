"""``gatherly segments`` and ``gatherly lists``: segments and marketing lists as a user (SPEC B5, B13).

Every command acts as the ``--as`` user through the segment service, so the access
engine decides what it may read and change; counts are what that user may read, with
the total beside them only while the ``segment_totals`` switch is on. The one operator
command, ``segments refresh --pending``, drains the change outbox as the worker does.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json
from gatherly.contact.models import Contact
from gatherly.core import csvout
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.org import service as org_service
from gatherly.org.service import OwnerNames
from gatherly.segment import criteria as crit
from gatherly.segment import jobs, service
from gatherly.segment.models import DYNAMIC, STATIC, MarketingList, Segment

segments_app = typer.Typer(
    help="Segments: dynamic (criteria) or static, with what each user may see.",
    no_args_is_help=True,
)
lists_app = typer.Typer(help="Marketing lists: static lists of contacts.", no_args_is_help=True)
out = Console()
# Ids are bounded as the API bounds them: a larger one is a usage error, not a traceback.
SegmentIdArg = Annotated[int, typer.Argument(help="Segment id.", min=1, max=MAX_ID)]
ListIdArg = Annotated[int, typer.Argument(help="List id.", min=1, max=MAX_ID)]
CsvOpt = Annotated[
    bool,
    typer.Option(
        "--csv",
        help="Write every member the user may read as CSV "
        f"({','.join(service.EXPORT_COLUMNS)}); cells that would start a spreadsheet "
        "formula get a leading '.",
    ),
]


class Scope(StrEnum):
    """Who a segment may hold: the owner's business unit, or the whole organisation."""

    organization = "organization"
    business_unit = "business_unit"


ScopeOpt = Annotated[
    Scope | None,
    typer.Option(
        help="business_unit (default): only contacts of the owner's BU while BU scoping is on; "
        "organization needs organization-level create and write on segments.",
    ),
]
CriteriaOpt = Annotated[
    str | None,
    typer.Option("--criteria", help='Criteria as JSON, e.g. \'{"contact": {"country": "JP"}}\'.'),
]
CriteriaFileOpt = Annotated[
    Path | None, typer.Option("--criteria-file", help="A file holding the criteria JSON.")
]


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _read_criteria(text: str | None, file: Path | None) -> Any:
    """The decoded criteria of ``--criteria`` or ``--criteria-file`` (None when neither)."""
    if text is not None and file is not None:
        raise ValidationFailed("give --criteria or --criteria-file, not both", field="criteria")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"cannot read {file}: {exc}", field="criteria-file") from None
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"criteria is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            field="criteria",
        ) from None


@contextmanager
def _criteria_errors() -> Iterator[None]:
    """Criteria errors already start with the bad node's path; report them under ``criteria``."""
    try:
        yield
    except crit.CriteriaError as exc:
        raise crit.CriteriaError(exc.message, field="criteria") from None


def _write_csv(members: Iterator[Contact]) -> None:
    """Members on stdout through the one CSV writer (formulas neutralised)."""
    columns = service.EXPORT_COLUMNS
    csvout.write(sys.stdout, columns, csvout.attributes(columns, members))


def _contact_dict(c: Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "email": c.email,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "company": c.company,
        "country": c.country,
        "owning_bu_id": c.owning_bu_id,
    }


def _contacts_table(rows: list[dict[str, Any]]) -> Table:
    table = Table("id", "email", "name", "company", "country", "BU")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["email"] or ""),
            escape(f"{r['first_name']} {r['last_name']}".strip()),
            escape(r["company"]),
            escape(r["country"] or ""),
            str(r["owning_bu_id"]),
        )
    return table


def _visible(visible: int, total: int | None) -> str:
    return f"visible to you: {visible}" + ("" if total is None else f" of {total}")


def _names(names: OwnerNames, record: Segment | MarketingList) -> dict[str, Any]:
    """The owner's and owning BU's names as the user may see them (None when they may not)."""
    owner = names.owner(record)
    return {
        "owner_name": f"{record.owner_type} {owner}" if owner else None,
        "owning_bu": names.business_unit(record),
    }


def _segment_dict(
    db: Session, principal: Principal, s: Segment, names: OwnerNames | None = None
) -> dict[str, Any]:
    """A segment as the CLI shows it; ``names`` (looked up once for a whole list) or its own."""
    names = names or org_service.owner_names(db=db, principal=principal, records=[s])
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "kind": s.kind,
        "scope": s.scope,
        "applied_scope": service.effective_scope(db=db, segment=s),
        "owner": {"type": s.owner_type, "id": s.owner_id},
        "owning_bu_id": s.owning_bu_id,
        **_names(names, s),
        "refresh_state": s.refresh_state,
        "refreshed_at": s.refreshed_at,
        "refresh_seconds": s.refresh_seconds,
        "refresh_error": s.refresh_error,
        "created_at": s.created_at,
        "modified_at": s.modified_at,
        "criteria": s.criteria,
    }


def _list_dict(
    db: Session, principal: Principal, m: MarketingList, names: OwnerNames | None = None
) -> dict[str, Any]:
    """A list as the CLI shows it; ``names`` (looked up once for a whole list) or its own."""
    names = names or org_service.owner_names(db=db, principal=principal, records=[m])
    return {
        "id": m.id,
        "name": m.name,
        "description": m.description,
        "owner": {"type": m.owner_type, "id": m.owner_id},
        "owning_bu_id": m.owning_bu_id,
        **_names(names, m),
        "created_at": m.created_at,
        "modified_at": m.modified_at,
    }


# ------------------------------------------------------------------ segments


@segments_app.command("create")
def segments_create(
    name: Annotated[str, typer.Argument(help="Segment name.")],
    as_user: AsOpt,
    criteria: CriteriaOpt = None,
    criteria_file: CriteriaFileOpt = None,
    static: Annotated[
        bool,
        typer.Option(
            "--static",
            help="A static segment (hand-picked members, no criteria); refused while BU "
            "scoping is on: use a marketing list in a dynamic segment instead.",
        ),
    ] = False,
    scope: ScopeOpt = None,
    description: Annotated[str, typer.Option(help="What the segment is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create a segment owned by the user; its membership is computed on the next refresh."""
    tree = _read_criteria(criteria, criteria_file)
    with acting(as_user) as (db, principal), _criteria_errors():
        segment = service.create_segment(
            db=db,
            principal=principal,
            name=name,
            kind=STATIC if static else DYNAMIC,
            criteria=tree,
            scope=scope.value if scope else None,
            description=description,
        )
        data = _segment_dict(db, principal, segment)
    if as_json:
        print_json(data)
        return
    out.print(f"created {data['kind']} segment {name!r} (id {data['id']})", markup=False)
    if data["kind"] == DYNAMIC:
        out.print(
            f"membership: pending until the worker refreshes it, or run "
            f"`gatherly segments refresh {data['id']} --as {as_user}`",
            markup=False,
            soft_wrap=True,
        )


def _every_row(
    as_user: str, lister: Callable[..., Any], to_row: Callable[..., dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every record ``lister`` finds for the user, page after page, as display rows with
    owner and BU names looked up once for them all."""
    with acting(as_user) as (db, principal):
        found = every_page(
            lambda cursor: lister(db=db, principal=principal, cursor=cursor, limit=200)
        )
        names = org_service.owner_names(db=db, principal=principal, records=found)
        return [to_row(db, principal, r, names) for r in found]


@segments_app.command("list")
def segments_list(
    as_user: AsOpt,
    q: Annotated[str | None, typer.Option("--q", help="Text in the segment name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Segments the user may read, newest first."""
    rows = _every_row(as_user, partial(service.list_segments, q=q), _segment_dict)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "kind", "scope", "owner", "refresh", "refreshed (UTC)")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            r["kind"],
            r["applied_scope"],
            escape(r["owner_name"]),
            r["refresh_state"],
            _when(r["refreshed_at"]),
        )
    out.print(table)
    out.print(f"{len(rows)} segment(s)")


@segments_app.command("show")
def segments_show(
    segment_id: SegmentIdArg,
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """One segment: scope, refresh state, criteria and how many members the user may see."""
    with acting(as_user) as (db, principal):
        segment = service.get_segment(db=db, principal=principal, segment_id=segment_id)
        data = _segment_dict(db, principal, segment)
        data["scoping_on"] = service.scoping_on(db=db)
        data["members"] = dataclasses.asdict(
            service.segment_counts(db=db, principal=principal, segment=segment)
        )
    if as_json:
        print_json(data)
        return
    counts = data["members"]
    lines = [
        f"segment {data['id']}: {data['name']}",
        f"kind: {data['kind']}",
        f"description: {data['description']}",
        f"owner: {data['owner_name']}, business unit {data['owning_bu']} (id {data['owning_bu_id']})",
        f"scope: {data['scope']}, applied: {data['applied_scope']}"
        + (
            "" if data["scoping_on"] else " (BU scoping is off: every segment is organization-wide)"
        ),
        f"refresh: {data['refresh_state']}"
        + (
            f", last {_when(data['refreshed_at'])} UTC in {data['refresh_seconds']:.3f} s"
            if data["refreshed_at"] and data["refresh_seconds"] is not None
            else ", never refreshed (members are evaluated live)"
        ),
    ]
    if data["refresh_error"]:
        lines.append(f"refresh error: {data['refresh_error']}")
    lines.append(f"members {_visible(counts['visible'], counts['total'])} ({counts['source']})")
    for line in lines:
        out.print(line, markup=False, soft_wrap=True)
    if data["criteria"] is not None:
        out.print("criteria:")
        out.print(json.dumps(data["criteria"], indent=2), markup=False, soft_wrap=True)


@segments_app.command("members")
def segments_members(
    segment_id: SegmentIdArg,
    as_user: AsOpt,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many members to list.")] = 50,
    live: Annotated[
        bool, typer.Option("--live", help="Evaluate the criteria now instead of the last refresh.")
    ] = False,
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The segment's members the user may read, with that count (and the total when allowed)."""
    if as_csv and (as_json or live):
        raise ValidationFailed(
            "--csv exports the segment's current membership; it takes neither --json nor --live",
            field="csv",
        )
    with acting(as_user) as (db, principal):
        if as_csv:
            _write_csv(
                service.iter_visible_members(db=db, principal=principal, segment_id=segment_id)
            )
            return
        found = service.members(
            db=db, principal=principal, segment_id=segment_id, live=live, limit=limit
        )
        data: dict[str, Any] = {
            "segment_id": segment_id,
            "visible": found.visible,
            "total": found.total,
            "source": found.source,
            "refreshed_at": found.refreshed_at,
            "items": [_contact_dict(c) for c in found.page.items],
        }
    if as_json:
        print_json(data)
        return
    out.print(_contacts_table(data["items"]))
    shown = len(data["items"])
    more = f", first {shown} shown" if shown < data["visible"] else ""
    source = (
        f"as of {_when(data['refreshed_at'])} UTC"
        if data["source"] == "materialised" and data["refreshed_at"]
        else data["source"]
    )
    out.print(f"{_visible(data['visible'], data['total'])}{more} ({source})", markup=False)


@segments_app.command("refresh")
def segments_refresh(
    segment_id: Annotated[int | None, typer.Argument(help="Segment id.", min=1, max=MAX_ID)] = None,
    as_user: Annotated[
        str | None,
        typer.Option("--as", help="Refresh as this user (username or id); needed with an id."),
    ] = None,
    pending: Annotated[
        bool,
        typer.Option(
            "--pending",
            help="Operator: process the change outbox and refresh every segment that is due, "
            "as the worker does (no --as).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute one segment's membership now, or (--pending) everything the worker would."""
    if pending:
        if segment_id is not None or as_user is not None:
            raise ValidationFailed("--pending takes neither a segment id nor --as", field="pending")
        _refresh_pending(as_json)
        return
    if segment_id is None or as_user is None:
        raise ValidationFailed(
            "give a segment id and --as USER, or --pending to process the change outbox",
            field="id",
        )
    with acting(as_user) as (db, principal):
        segment, result = service.refresh_for(db=db, principal=principal, segment_id=segment_id)
        counts = service.segment_counts(db=db, principal=principal, segment=segment)
    data: dict[str, Any] = {"segment_id": segment_id, "refreshed": result is not None}
    data["visible"], data["total"] = counts.visible, counts.total
    # Added and removed say as much about the whole membership as its total does.
    if result is not None:
        data["seconds"] = round(result.seconds, 3)
        if counts.total is not None:
            data["added"], data["removed"] = result.added, result.removed
    if as_json:
        print_json(data)
        return
    if result is None:
        out.print(f"segment {segment_id} is static: its members are kept by hand")
        out.print(_visible(data["visible"], data["total"]), markup=False)
        return
    changed = (
        f": +{data['added']} -{data['removed']}, total {data['total']}" if "added" in data else ""
    )
    out.print(f"refreshed segment {segment_id} in {data['seconds']:.3f} s{changed}", markup=False)
    out.print(_visible(data["visible"], data["total"]), markup=False)


def _refresh_pending(as_json: bool) -> None:
    settings = Settings()
    engine = make_engine(settings.database_url)
    try:
        factory = make_session_factory(engine)
        drained = jobs.process_changes(factory)
        due = jobs.refresh_due(
            factory, max_age=timedelta(minutes=settings.segment_relative_refresh_minutes)
        )
    finally:
        engine.dispose()
    refreshed = drained.refreshed + due.refreshed
    failed = {**drained.failed, **due.failed}
    data = {
        "changes": drained.changes,
        "refreshed": [asdict(r) for r in refreshed],
        "failed": failed,
    }
    if as_json:
        print_json(data)
    else:
        out.print(
            f"processed {drained.changes} change(s); refreshed {len(refreshed)} segment(s)",
            markup=False,
        )
        for r in refreshed:
            out.print(
                f"  segment {r.segment_id}: +{r.added} -{r.removed}, total {r.total} "
                f"({'partial' if r.partial else 'full'}, {r.seconds:.3f} s)",
                markup=False,
            )
        for seg_id, error in failed.items():
            out.print(f"  segment {seg_id} failed: {error}", markup=False, soft_wrap=True)
    if failed:
        raise typer.Exit(1)


@segments_app.command("explain")
def segments_explain(
    segment_id: SegmentIdArg,
    contact: Annotated[int, typer.Option("--contact", help="Contact id.", min=1, max=MAX_ID)],
    as_user: AsOpt,
    viewer: Annotated[
        str | None,
        typer.Option(
            help="Also say whether this user (username or id) sees the contact in the segment "
            "(system administrators only).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Why a contact is in or out of a segment: each criteria node, the scope, the viewer."""
    with acting(as_user) as (db, principal):
        viewer_id = (
            org_service.find_user(db=db, ref=viewer, field="viewer").id
            if viewer is not None
            else None
        )
        data = dataclasses.asdict(
            service.explain(
                db=db,
                principal=principal,
                segment_id=segment_id,
                contact_id=contact,
                viewer_id=viewer_id,
            )
        )
    if as_json:
        print_json(data)
        return
    verdict = "is a member" if data["member"] else "is not a member"
    out.print(f"contact {data['contact_id']} {verdict} of segment {data['segment_id']}")
    out.print(f"why: {data['why']}", markup=False, soft_wrap=True)
    stored = "yes" if data["materialised_member"] else "no"
    as_of = f" (refreshed {_when(data['refreshed_at'])} UTC)" if data["refreshed_at"] else ""
    out.print(f"in the stored membership: {stored}{as_of}", markup=False)
    if data["criteria"]:
        out.print("criteria:")
    for node in data["criteria"]:
        depth = node["path"].count("[") + node["path"].count(".not")
        mark = "[green]✓[/]" if node["matched"] else "[red]✗[/]"
        out.print(
            f"  {'  ' * depth}{mark} {escape(node['path'])}: {escape(node['description'])}",
            soft_wrap=True,
        )
    s = data["scope"]
    mark = "[green]✓[/]" if s["passes"] else "[red]✗[/]"
    limit = "any business unit" if s["business_unit_id"] is None else f"BU {s['business_unit_id']}"
    out.print(
        f"scope: {mark} setting {s['setting']}, applied {s['applied']} "
        f"(BU scoping {'on' if s['scoping_on'] else 'off'}): {limit}; "
        f"the contact is in BU {s['contact_business_unit_id']}",
        soft_wrap=True,
    )
    v = data["viewer"]
    reads = "[green]✓[/]" if v["can_read"] else "[red]✗[/]"
    sees = "[green]✓[/]" if v["sees_it"] else "[red]✗[/]"
    out.print(
        f"viewer {escape(v['username'])} (id {v['user_id']}): {reads} may read the contact, "
        f"{sees} sees it in the segment",
        soft_wrap=True,
    )
    out.print(f"  access: {v['access']}", markup=False, soft_wrap=True)


@segments_app.command("preview")
def segments_preview(
    as_user: AsOpt,
    criteria: CriteriaOpt = None,
    criteria_file: CriteriaFileOpt = None,
    scope: ScopeOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many contacts to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """What unsaved criteria would hold, as the user would see it (nothing is saved)."""
    tree = _read_criteria(criteria, criteria_file)
    if tree is None:
        raise ValidationFailed("give --criteria or --criteria-file", field="criteria")
    with acting(as_user) as (db, principal), _criteria_errors():
        found = service.preview(
            db=db,
            principal=principal,
            criteria=tree,
            scope=scope.value if scope else None,
            limit=limit,
        )
        data: dict[str, Any] = {
            "visible": found.visible,
            "scope": found.scope,
            "scope_bu_id": found.scope_bu_id,
            "items": [_contact_dict(c) for c in found.items],
        }
    if as_json:
        print_json(data)
        return
    limited = "" if data["scope_bu_id"] is None else f" (BU {data['scope_bu_id']})"
    out.print(f"scope applied: {data['scope']}{limited}", markup=False)
    out.print(_contacts_table(data["items"]))
    out.print(_visible(data["visible"], None), markup=False)


# ------------------------------------------------------------------ marketing lists


@lists_app.command("create")
def lists_create(
    name: Annotated[str, typer.Argument(help="List name.")],
    as_user: AsOpt,
    description: Annotated[str, typer.Option(help="What the list is for.")] = "",
    as_json: JsonOpt = False,
) -> None:
    """Create an empty marketing list owned by the user."""
    with acting(as_user) as (db, principal):
        row = service.create_list(db=db, principal=principal, name=name, description=description)
        data = _list_dict(db, principal, row)
    if as_json:
        print_json(data)
        return
    out.print(f"created marketing list {name!r} (id {data['id']})", markup=False)


@lists_app.command("list")
def lists_list(
    as_user: AsOpt,
    q: Annotated[str | None, typer.Option("--q", help="Text in the list name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Marketing lists the user may read, newest first."""
    rows = _every_row(as_user, partial(service.list_lists, q=q), _list_dict)
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "owner", "business unit", "description")
    for r in rows:
        table.add_row(
            str(r["id"]),
            escape(r["name"]),
            escape(r["owner_name"]),
            escape(r["owning_bu"] or ""),
            escape(r["description"]),
        )
    out.print(table)
    out.print(f"{len(rows)} list(s)")


@lists_app.command("show")
def lists_show(
    list_id: ListIdArg,
    as_user: AsOpt,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many members to list.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """One list: owner, how many members the user may read, and the first of them."""
    with acting(as_user) as (db, principal):
        data = _list_dict(
            db, principal, service.get_list(db=db, principal=principal, list_id=list_id)
        )
        page, visible = service.list_members(
            db=db, principal=principal, list_id=list_id, limit=limit
        )
        data["visible_members"] = visible
        data["members"] = [_contact_dict(c) for c in page.items]
    if as_json:
        print_json(data)
        return
    for line in (
        f"marketing list {data['id']}: {data['name']}",
        f"description: {data['description']}",
        f"owner: {data['owner_name']}, business unit {data['owning_bu']} (id {data['owning_bu_id']})",
        f"members visible to you: {visible}",
    ):
        out.print(line, markup=False, soft_wrap=True)
    if data["members"]:
        out.print(_contacts_table(data["members"]))


@lists_app.command("members")
def lists_members(
    list_id: ListIdArg,
    as_user: AsOpt,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many members to list.")] = 50,
    as_csv: CsvOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """The list's members the user may read, with that count; --csv writes them all."""
    if as_csv and as_json:
        raise ValidationFailed("--csv and --json are two outputs: give one", field="csv")
    with acting(as_user) as (db, principal):
        if as_csv:
            _write_csv(
                service.iter_visible_list_members(db=db, principal=principal, list_id=list_id)
            )
            return
        page, visible = service.list_members(
            db=db, principal=principal, list_id=list_id, limit=limit
        )
        data: dict[str, Any] = {
            "list_id": list_id,
            "visible": visible,
            "items": [_contact_dict(c) for c in page.items],
        }
    if as_json:
        print_json(data)
        return
    out.print(_contacts_table(data["items"]))
    shown = len(data["items"])
    more = f", first {shown} shown" if shown < visible else ""
    out.print(f"{_visible(visible, None)}{more}", markup=False)


ContactIdsArg = Annotated[list[int], typer.Argument(help="Contact ids.", min=1, max=MAX_ID)]


@lists_app.command("add")
def lists_add(
    list_id: ListIdArg,
    contact_ids: ContactIdsArg,
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Add contacts the user may read to a list the user may write."""
    with acting(as_user) as (db, principal):
        change = service.add_to_list(
            db=db, principal=principal, list_id=list_id, contact_ids=contact_ids
        )
    if as_json:
        print_json({"list_id": list_id, "added": change.added, "already": change.already})
        return
    out.print(f"added {change.added} contact(s); {change.already} already on the list")


@lists_app.command("remove")
def lists_remove(
    list_id: ListIdArg,
    contact_ids: ContactIdsArg,
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Remove contacts the user may read from a list the user may write."""
    with acting(as_user) as (db, principal):
        change = service.remove_from_list(
            db=db, principal=principal, list_id=list_id, contact_ids=contact_ids
        )
    if as_json:
        print_json(
            {"list_id": list_id, "removed": change.removed, "not_members": change.not_members}
        )
        return
    out.print(f"removed {change.removed} contact(s); {change.not_members} were not on the list")


@lists_app.command("import")
def lists_import(
    list_id: ListIdArg,
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV with a header row naming an 'email' column, or one column of emails."
        ),
    ],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Add the contacts a CSV names by email; report unknown emails and invalid rows."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"cannot read {file}: {exc}", field="file") from None
    with acting(as_user) as (db, principal):
        change = service.import_csv(db=db, principal=principal, list_id=list_id, text=text)
    data = {"list_id": list_id, **asdict(change)}
    data.pop("removed")
    data.pop("not_members")
    if as_json:
        print_json(data)
        return
    out.print(
        f"read {change.rows} row(s): added {change.added}, already members {change.already}, "
        f"unknown emails {len(change.unknown_emails)}, invalid rows {len(change.invalid_rows)}",
        markup=False,
        soft_wrap=True,
    )
    if change.unknown_emails:
        out.print(f"unknown emails ({len(change.unknown_emails)}):")
        for email in change.unknown_emails:
            out.print(f"  {email}", markup=False, soft_wrap=True)
    if change.invalid_rows:
        out.print(f"invalid rows ({len(change.invalid_rows)}):")
        for row in change.invalid_rows:
            out.print(
                f"  line {row['line']}: {row['value']!r}: {row['error']}",
                markup=False,
                soft_wrap=True,
            )
