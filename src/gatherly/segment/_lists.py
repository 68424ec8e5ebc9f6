"""Marketing lists: create, rename, delete, add and remove members, CSV import (SPEC B13)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import (
    Select,
    func,
    select,
)
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.contact.schemas import OwnerRef
from gatherly.core import changes
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, ValidationFailed
from gatherly.core.pagination import Page
from gatherly.segment._common import (
    CONTACT,
    CONTACT_KIND,
    LIST,
    MAX_IDS,
    MembershipChange,
    _delete_members,
    _insert_members,
    _named,
    _named_page,
    _owner,
    _page,
    _readable_contact_ids,
    count_visible,
)
from gatherly.segment.models import (
    MarketingList,
    MarketingListMember,
    SegmentListRef,
)


def get_list(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    privilege: Privilege = Privilege.READ,
    field: str = "id",
) -> MarketingList:
    """A list the caller may read (NotFound otherwise), checked for ``privilege``."""
    found = owned.get(
        db, principal, LIST, list_id, noun="marketing list", privilege=privilege, field=field
    )
    assert isinstance(found, MarketingList)
    return found


def create_list(
    *,
    db: Session,
    principal: access.Principal,
    name: str,
    description: str = "",
    owner: OwnerRef | None = None,
) -> MarketingList:
    """A new, empty list owned by ``owner`` (default: the caller)."""
    owner, bu_id = _owner(db, principal, owner)
    access.can_create_in(
        db, principal, LIST, owner_type=owner.type, owner_id=owner.id, owning_bu_id=bu_id
    )
    row = MarketingList(
        name=name,
        description=description,
        **contact_service.new_record_columns(owner=owner, bu_id=bu_id, principal=principal),
    )
    db.add(row)
    db.flush()
    return row


def update_list(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    name: str | None = None,
    description: str | None = None,
) -> MarketingList:
    """Rename or re-describe a list (needs Write)."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    if name is not None:
        row.name = name
    if description is not None:
        row.description = description
    row.modified_at, row.modified_by_id = utcnow(), principal.user_id
    db.flush()
    return row


def delete_list(*, db: Session, principal: access.Principal, list_id: int) -> None:
    """Delete a list (needs Delete); refused while a segment's criteria use it."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.DELETE)
    used = db.execute(
        select(func.count()).select_from(SegmentListRef).where(SegmentListRef.list_id == row.id)
    ).scalar_one()
    if used:
        raise Conflict(
            f"marketing list {row.id} is used by {used} segment(s); remove it from their "
            "criteria first",
            field="id",
        )
    db.delete(row)
    db.flush()


def list_lists(
    *,
    db: Session,
    principal: access.Principal,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """A page of the lists the caller may read, newest first."""
    return _named_page(db, principal, MarketingList, LIST, q=q, cursor=cursor, limit=limit)


def count_lists(*, db: Session, principal: access.Principal, q: str | None = None) -> int:
    """How many lists the caller may read."""
    return access.count(db, _named(MarketingList, q), principal=principal, record_type=LIST)


def lists_of_contact(
    *, db: Session, principal: access.Principal, contact_id: int
) -> list[MarketingList]:
    """The lists the caller may read that hold a contact the caller may read, by name."""
    contact_service.get(db=db, principal=principal, kind=CONTACT_KIND, record_id=contact_id)
    stmt = select(MarketingList).where(
        MarketingList.id.in_(
            select(MarketingListMember.list_id).where(MarketingListMember.contact_id == contact_id)
        )
    )
    scoped = access.scope(stmt, principal=principal, record_type=LIST)
    return list(db.scalars(scoped.order_by(MarketingList.name, MarketingList.id)))


def add_to_list(
    *, db: Session, principal: access.Principal, list_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Add contacts the caller may read to a list the caller may write."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    added = _insert_members(
        db, MarketingListMember, "list_id", row.id, ids, added_by_id=principal.user_id
    )
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return MembershipChange(added=added, already=len(ids) - added)


def remove_from_list(
    *, db: Session, principal: access.Principal, list_id: int, contact_ids: Sequence[int]
) -> MembershipChange:
    """Remove contacts (the caller may read) from a list the caller may write."""
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    ids = _readable_contact_ids(db, principal, contact_ids, field="contact_ids")
    removed = _delete_members(db, MarketingListMember, "list_id", row.id, ids)
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return MembershipChange(removed=removed, not_members=len(ids) - removed)


MAX_IMPORT_ROWS = 100_000


def import_csv(
    *, db: Session, principal: access.Principal, list_id: int, text: str
) -> MembershipChange:
    """Add the contacts a CSV names by email (column ``email``, or the only column).

    Every readable contact with a listed email is added (with BU scoping on, the same
    person may be a contact in several BUs). Emails no readable contact has are reported,
    as are rows without a valid email; nothing else changes.
    """
    row = get_list(db=db, principal=principal, list_id=list_id, privilege=Privilege.WRITE)
    emails, report = _csv_emails(text)
    found: dict[str, list[int]] = {}
    chunk = 900
    unique = sorted(set(emails))
    for start in range(0, len(unique), chunk):
        part = unique[start : start + chunk]
        query = cast(Select[Any], select(Contact.id, Contact.email).where(Contact.email.in_(part)))
        stmt = access.scope(query, principal=principal, record_type=CONTACT)
        for contact_id, email in db.execute(stmt):
            if email is not None:
                found.setdefault(email, []).append(contact_id)
    report.unknown_emails = [e for e in unique if e not in found]
    ids = sorted({i for matches in found.values() for i in matches})
    for start in range(0, len(ids), MAX_IDS):
        batch = ids[start : start + MAX_IDS]
        added = _insert_members(
            db, MarketingListMember, "list_id", row.id, batch, added_by_id=principal.user_id
        )
        report.added += added
        report.already += len(batch) - added
    changes.record(db, changes.MARKETING_LIST, ref_id=row.id, contact_ids=ids)
    return report


def _csv_emails(text: str) -> tuple[list[str], MembershipChange]:
    from email_validator import EmailNotValidError, validate_email

    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise ValidationFailed("the CSV is empty", field="csv")
    header = [cell.strip().lower() for cell in rows[0]]
    if "email" in header:
        column, body, first_line = header.index("email"), rows[1:], 2
    elif len(header) == 1:
        column, body, first_line = 0, rows, 1
    else:
        raise ValidationFailed(
            "the CSV needs a header row with an 'email' column (or a single column of emails)",
            field="csv",
        )
    if len(body) > MAX_IMPORT_ROWS:
        raise ValidationFailed(f"at most {MAX_IMPORT_ROWS} rows per import", field="csv")
    report = MembershipChange(rows=len(body))
    emails = []
    for offset, r in enumerate(body):
        raw = r[column].strip() if column < len(r) else ""
        try:
            emails.append(validate_email(raw, check_deliverability=False).normalized.casefold())
        except EmailNotValidError as exc:
            report.invalid_rows.append(
                {"line": first_line + offset, "value": raw, "error": str(exc)}
            )
    return emails, report


def list_members(
    *,
    db: Session,
    principal: access.Principal,
    list_id: int,
    cursor: str | None = None,
    limit: int = 50,
    sort: str = "last_name",
) -> tuple[Page, int]:
    """The list's members the caller may read (a page) and how many there are."""
    row = get_list(db=db, principal=principal, list_id=list_id)
    stmt = _list_statement(row.id)
    return _page(db, principal, stmt, cursor=cursor, limit=limit, sort=sort), count_visible(
        db=db, principal=principal, stmt=stmt
    )


def _list_statement(list_id: int) -> Select[Any]:
    """``select(Contact)`` of a list's members (no viewer filter)."""
    members = select(MarketingListMember.contact_id).where(MarketingListMember.list_id == list_id)
    return select(Contact).where(Contact.id.in_(members))
