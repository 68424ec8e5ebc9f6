"""Importing contacts and leads from CSV through the matching service (SPEC B8, M).

Each row is checked as the API checks a new record, then matched by the published
duplicate-detection rules among the records the importing user may read: a match is
updated (or skipped, on request), anything else is created, owned by the importing user
or the owner named. Every row gets an outcome — matched, created, skipped or refused with
the reason — and a refused row changes nothing.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from gatherly.access import engine as access
from gatherly.access.levels import Privilege
from gatherly.contact import matching, service
from gatherly.contact.schemas import ContactCreate, ContactUpdate, LeadCreate, LeadUpdate, OwnerRef
from gatherly.core.exceptions import GatherlyError, ValidationFailed

MAX_ROWS = 20_000
MAX_BYTES = 20 * 1024 * 1024
COLUMNS = ("email", "first_name", "last_name", "company", "job_title", "phone", "country")
LEAD_COLUMNS = ("topic", "source")
OnMatch = Literal["update", "skip"]

MATCHED, CREATED, SKIPPED, REFUSED = "matched", "created", "skipped", "refused"


@dataclass(frozen=True)
class RowResult:
    """What happened to one row (``line`` counts the header as line 1)."""

    line: int
    outcome: str
    record_id: int | None = None
    message: str = ""
    field: str | None = None


@dataclass
class ImportReport:
    """Every row's outcome and the totals."""

    record_type: str
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.rows if r.outcome == outcome)

    @property
    def totals(self) -> dict[str, int]:
        return {o: self.count(o) for o in (MATCHED, CREATED, SKIPPED, REFUSED)}


def _rows(text: str, record_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ValidationFailed(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB; split it", field="file"
        )
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    headers = [h.strip() for h in reader.fieldnames or []]
    if not headers:
        raise ValidationFailed(
            "the file is empty: the first line must name the columns", field="file"
        )
    known = COLUMNS + (LEAD_COLUMNS if record_type == "lead" else ())
    for h in headers:
        if h not in known and not h.startswith("custom."):
            raise ValidationFailed(
                f"unknown column {h!r}; columns are {', '.join(known)} and custom.<name>",
                field="file",
            )
    if "email" not in headers and "last_name" not in headers:
        raise ValidationFailed("the file needs an email or a last_name column", field="file")
    for n, raw in enumerate(reader, start=2):
        if n - 1 > MAX_ROWS:
            raise ValidationFailed(
                f"the file has more than {MAX_ROWS} rows; split it", field="file"
            )
        if None in raw:
            yield n, {"__error__": "this row has more cells than the header has columns"}
            continue
        row: dict[str, Any] = {"custom": {}}
        for key, value in raw.items():
            value = (value or "").strip()
            name = (key or "").strip()
            if name.startswith("custom."):
                if value:
                    row["custom"][name.removeprefix("custom.")] = value
            elif value:
                row[name] = value
        if len(row) == 1 and not row["custom"]:
            continue  # a blank line
        yield n, row


def import_csv(
    *,
    db: Any,
    principal: access.Principal,
    kind: service.Kind,
    text: str,
    on_match: OnMatch = "update",
    owner: OwnerRef | None = None,
) -> ImportReport:
    """Import every row of ``text`` (CSV with a header line); see the module's doc."""
    if on_match not in ("update", "skip"):
        raise ValidationFailed("on_match must be update or skip", field="on_match")
    create_model = LeadCreate if kind.record_type == "lead" else ContactCreate
    update_model = LeadUpdate if kind.record_type == "lead" else ContactUpdate
    report = ImportReport(record_type=kind.record_type)
    owner = owner or OwnerRef(type="user", id=principal.user_id)
    bu_id = service.resolve_owner(db=db, owner=owner)
    try:
        rows = list(_rows(text, kind.record_type))
    except csv.Error as exc:
        raise ValidationFailed(f"the file is not CSV: {exc}", field="file") from None
    matching.hold(db, record_type=kind.record_type, emails=(row.get("email") for _, row in rows))
    for line, row in rows:
        if "__error__" in row:
            report.rows.append(RowResult(line, REFUSED, message=row["__error__"]))
            continue
        try:
            body = create_model.model_validate({**row, "owner": owner.model_dump()})
        except ValidationError as exc:
            first = exc.errors()[0]
            name = ".".join(str(p) for p in first["loc"]) or None
            message = str(first["msg"]).removeprefix("Value error, ")
            report.rows.append(RowResult(line, REFUSED, message=message, field=name))
            continue
        values = body.model_dump(exclude={"owner"})
        try:
            found = service.readable_duplicates(
                db=db, principal=principal, kind=kind, values=values, bu_id=bu_id
            )
            if found:
                match = found[0]
                if on_match == "skip":
                    report.rows.append(RowResult(line, SKIPPED, match.id, "already here"))
                    continue
                if not access.can(db, principal, Privilege.WRITE, kind.record_type, match):
                    report.rows.append(
                        RowResult(
                            line,
                            REFUSED,
                            match.id,
                            f"matches {kind.label} {match.id}, which you may not change",
                        )
                    )
                    continue
                changes = {k: v for k, v in values.items() if k in row and k != "custom"}
                if row["custom"]:
                    changes["custom"] = {**match.custom, **values["custom"]}
                service.update(
                    db=db,
                    principal=principal,
                    kind=kind,
                    record_id=match.id,
                    record_in=update_model.model_validate(changes),
                    allow_duplicate=True,
                )
                report.rows.append(RowResult(line, MATCHED, match.id))
                continue
            record = service.create(
                db=db, principal=principal, kind=kind, record_in=body, origin="import"
            )
            report.rows.append(RowResult(line, CREATED, record.id))
        except GatherlyError as exc:  # raised before anything of this row was written
            report.rows.append(RowResult(line, REFUSED, message=exc.message, field=exc.field))
    return report
