"""Bulk actions on contacts chosen in a list of them (the contact search, a segment's
members, a tab of an event's people): add them to or remove them from a marketing list, or export them as CSV.

A selection is the rows ticked, or every contact the list matches. Either way only the
contacts the caller may read are taken, and the plan (how many will change) is counted
from the same statement as the change, before it is made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.core.csvout import CsvExport
from gatherly.core.exceptions import ValidationFailed
from gatherly.event import service as event_service
from gatherly.segment._common import CONTACT, LIST, MAX_IDS, MembershipChange
from gatherly.segment._lists import add_to_list, get_list, remove_from_list
from gatherly.segment._members import _csv_chunks, _iter_readable, membership_statement
from gatherly.segment._segments import get_segment
from gatherly.segment.models import MarketingList, MarketingListMember

MAX_BULK = 100_000  # contacts one bulk action takes at most
ListAction = Literal["add", "remove"]


@dataclass(frozen=True)
class Selection:
    """The contacts a bulk action takes: those ticked (``ids``), or, with ``all_matching``,
    every contact of the list they were ticked in: a segment's members (``segment_id``) or
    the contact search (``contacts``, its filters)."""

    ids: tuple[int, ...] = ()
    all_matching: bool = False
    contacts: contact_service.ListFilter | None = None
    segment_id: int | None = None
    event_id: int | None = None  # with ``tab``: the contacts of one tab of an event's people
    tab: str | None = None


@dataclass(frozen=True)
class ListPlan:
    """What adding the selection to a list (or removing it) will do, counted before."""

    action: ListAction
    list_id: int
    list_name: str
    selected: int  # contacts of the selection the caller may read
    will_change: int  # to be added (not members yet), or removed (members now)
    unchanged: int  # already members, or not members


def _ids_statement(db: Session, principal: access.Principal, selection: Selection) -> Select[Any]:
    """``select(Contact.id)`` of the selection's contacts the caller may read."""
    if selection.all_matching and selection.event_id is not None:
        people = event_service.event_people(db=db, principal=principal, event_id=selection.event_id)
        tab = selection.tab or "all"
        ids = sorted(
            {p.contact_id for p in people if p.contact_id and (tab == "all" or tab in p.tabs)}
        )
        source = select(Contact).where(Contact.id.in_(ids))
    elif selection.all_matching and selection.segment_id is not None:
        segment = get_segment(db=db, principal=principal, segment_id=selection.segment_id)
        source, _how = membership_statement(db=db, segment=segment, viewer=principal)
    elif selection.all_matching:
        flt = selection.contacts or contact_service.ListFilter()
        source = contact_service.matching_statement(kind=contact_service.CONTACT, flt=flt)
    else:
        ids = sorted(set(selection.ids))
        if not ids:
            raise ValidationFailed(
                "tick at least one contact, or choose every contact that matches",
                field="selection",
            )
        if len(ids) > MAX_BULK:
            raise ValidationFailed(f"tick at most {MAX_BULK:,} contacts", field="selection")
        source = select(Contact).where(Contact.id.in_(ids))
    return access.scope(
        source.with_only_columns(Contact.id), principal=principal, record_type=CONTACT
    )


def selected_ids(*, db: Session, principal: access.Principal, selection: Selection) -> list[int]:
    """The ids of the selection's contacts the caller may read (at most ``MAX_BULK``)."""
    stmt = _ids_statement(db, principal, selection).order_by(Contact.id).limit(MAX_BULK + 1)
    ids = list(db.scalars(stmt))
    if len(ids) > MAX_BULK:
        raise ValidationFailed(
            f"a bulk action takes at most {MAX_BULK:,} contacts: narrow the search first",
            field="selection",
        )
    return ids


def count_selected(*, db: Session, principal: access.Principal, selection: Selection) -> int:
    """How many of the selection's contacts the caller may read (what an export takes)."""
    return _counted(db, _ids_statement(db, principal, selection).subquery())


def _counted(db: Session, ids: Any) -> int:
    selected = db.scalar(select(func.count()).select_from(ids)) or 0
    if selected > MAX_BULK:
        raise ValidationFailed(
            f"a bulk action takes at most {MAX_BULK:,} contacts: narrow the search first",
            field="selection",
        )
    return selected


def writable_lists(*, db: Session, principal: access.Principal, limit: int = 200) -> list[Any]:
    """The lists the caller may change (add to, remove from), by name."""
    stmt = access.scope(
        select(MarketingList), principal=principal, record_type=LIST, privilege=Privilege.WRITE
    )
    return list(db.scalars(stmt.order_by(MarketingList.name, MarketingList.id).limit(limit)))


def plan_list_change(
    *,
    db: Session,
    principal: access.Principal,
    selection: Selection,
    list_id: int,
    action: ListAction,
) -> ListPlan:
    """How many contacts adding the selection to the list (or removing it) would change."""
    row = get_list(
        db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE, field="list_id"
    )
    ids = _ids_statement(db, principal, selection).subquery()
    selected = _counted(db, ids)
    members = (
        db.scalar(
            select(func.count())
            .select_from(MarketingListMember)
            .where(
                MarketingListMember.list_id == row.id,
                MarketingListMember.contact_id.in_(select(ids.c.id)),
            )
        )
        or 0
    )
    change = selected - members if action == "add" else members
    return ListPlan(action, row.id, row.name, selected, change, selected - change)


def apply_list_change(
    *,
    db: Session,
    principal: access.Principal,
    selection: Selection,
    list_id: int,
    action: ListAction,
) -> MembershipChange:
    """Add the selection's readable contacts to the list, or remove them from it."""
    get_list(
        db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE, field="list_id"
    )
    ids = selected_ids(db=db, principal=principal, selection=selection)
    if not ids:
        raise ValidationFailed("none of the chosen contacts is one you may read", field="selection")
    change = add_to_list if action == "add" else remove_from_list
    done = MembershipChange()
    for start in range(0, len(ids), MAX_IDS):
        part = change(
            db=db, principal=principal, list_id=list_id, contact_ids=ids[start : start + MAX_IDS]
        )
        done = MembershipChange(
            added=done.added + part.added,
            removed=done.removed + part.removed,
            already=done.already + part.already,
            not_members=done.not_members + part.not_members,
        )
    return done


def export_selection(
    *,
    db: Session,
    principal: access.Principal,
    selection: Selection,
    session_factory: Callable[[], Session],
) -> CsvExport:
    """The selection's readable contacts as CSV (the member export's columns), checked now:
    a selection that is refused is refused before the first row streams."""
    _ids_statement(db, principal, selection)

    def rows(own: Session) -> Iterator[Contact]:
        ids = _ids_statement(own, principal, selection)
        return _iter_readable(own, principal, select(Contact).where(Contact.id.in_(ids)), 1000)

    return CsvExport("contacts.csv", _csv_chunks(session_factory, rows))
