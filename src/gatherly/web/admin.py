"""Web pages: administration of BUs, users, teams, roles, feature switches, the token
policy, everyone's API tokens, the audit trail and the "explain access" tool
(SPEC B1–B4).

Every route mirrors the REST admin routes' checks (``org/router.py``):
reading BUs, users, teams and roles needs read on that type (organization level, every
built-in role has it); creating, changing and deleting them needs create/write/delete
(System Administrator); assigning roles needs assign on security_role; feature switches
change only for system administrators, who alone read the audit trail and everyone's
tokens. A page shows a change form only to a viewer the matching POST route would accept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access import registry
from gatherly.access.levels import Level, Privilege
from gatherly.api.params import PathId
from gatherly.core import audit
from gatherly.core.bounds import parse_id
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from gatherly.core.ids import Id
from gatherly.org import schemas as s
from gatherly.org import service
from gatherly.org.models import BusinessUnit
from gatherly.web import auth
from gatherly.web.pages import (
    CsrfChecked,
    CurrentViewer,
    NewPassword,
    Viewer,
    WebDb,
    page,
    parse_form,
)

router = APIRouter(
    prefix="/admin",
    include_in_schema=False,
)

ORG_TYPES = ("business_unit", "user", "team", "security_role")
FormText = Annotated[str, Form(max_length=2000)]
# Errors a form shows next to its fields; anything else (a missing page record) is a page.
FormErrors = (ValidationFailed, Conflict, NotFound, Forbidden)

LEVEL_WORDS = {
    Level.NONE: "None",
    Level.USER: "User",
    Level.BUSINESS_UNIT: "Business unit",
    Level.PARENT_CHILD: "Parent: child BUs",
    Level.ORGANIZATION: "Organization",
}
PATH_WORDS = {
    "system_administrator": "System administrator",
    "privilege": "Privilege check",
    "organization": "Organization level",
    "parent_child": "Parent: child business units",
    "business_unit": "Business unit level",
    "ownership": "Ownership",
    "team_ownership": "Team ownership",
    "share": "Share",
    "disabled": "Disabled user",
}


class ByBu(BaseModel):
    """The business unit a rename-or-move form names."""

    bu_id: Id


@dataclass(frozen=True)
class FormError:
    """A refused form: which form (``create``, ``delete-3`` …), which field, and why."""

    form: str
    field: str | None
    message: str


def _can(db: Session, viewer: Viewer, privilege: Privilege, record_type: str) -> bool:
    return access.can(db, viewer.principal, privilege, record_type)


def _require(db: Session, viewer: Viewer, privilege: Privilege, record_type: str) -> None:
    access.require(db, viewer.principal, privilege, record_type)


def _require_admin(viewer: Viewer) -> None:
    # The same rule and words as the API's settings, token and audit routes.
    service.require_admin(viewer.principal)


def _refused(
    db: Session, form: str, exc: ValidationFailed | Conflict | NotFound | Forbidden
) -> tuple[FormError, int]:
    """Undo whatever the refused change did, and say where and why (422 for bad ids)."""
    db.rollback()
    status = 422 if isinstance(exc, NotFound) else exc.status_code
    return FormError(form, exc.field, exc.message), status


def _back(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _attempt(db: Session, form: str, change: Callable[[], None]) -> tuple[FormError, int] | None:
    """Run a change; on a service refusal roll it back and return the inline error."""
    try:
        change()
    except FormErrors as exc:
        return _refused(db, form, exc)
    return None


# ------------------------------------------------------------------ overview


@router.get("", response_class=HTMLResponse)
def overview(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    readable = [t for t in ORG_TYPES if _can(db, viewer, Privilege.READ, t)]
    if not readable:
        raise Forbidden("you may not read business units, users, teams or roles")
    totals = service.org_totals(db=db)
    return page(
        request,
        "admin/overview.html",
        viewer,
        readable=readable,
        totals={t: totals[t] for t in readable},
    )


# ------------------------------------------------------------------ business units


def _bu_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    error: FormError | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    _require(db, viewer, Privilege.READ, "business_unit")
    bus = service.list_bus(db=db)
    children: dict[int | None, list[BusinessUnit]] = {}
    for bu in bus:
        children.setdefault(bu.parent_id, []).append(bu)
    counts = service.user_counts_by_bu(db=db) if _can(db, viewer, Privilege.READ, "user") else None
    return page(
        request,
        "admin/business_units.html",
        viewer,
        status_code=status_code,
        bus=bus,
        roots=children.get(None, []),
        children=children,
        user_counts=counts,
        may={
            p: _can(db, viewer, Privilege(p), "business_unit")
            for p in ("create", "write", "delete")
        },
        error=error,
        values=values or {},
    )


@router.get("/business-units", response_class=HTMLResponse)
def business_units(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _bu_page(request, db, viewer)


@router.post("/business-units", response_class=HTMLResponse)
def create_bu(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    name: FormText = "",
    parent_id: FormText = "",
) -> Response:
    _require(db, viewer, Privilege.CREATE, "business_unit")

    def change() -> None:
        body = parse_form(s.BusinessUnitIn, name=name, parent_id=parent_id)
        service.create_bu(
            db=db, name=body.name, parent_id=body.parent_id, principal=viewer.principal
        )

    if refused := _attempt(db, "create", change):
        error, status = refused
        values = {"name": name, "parent_id": parent_id}
        return _bu_page(request, db, viewer, error=error, status_code=status, values=values)
    return _back("/admin/business-units")


@router.post("/business-units/update", response_class=HTMLResponse)
def update_bu(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    bu_id: FormText = "",
    name: FormText = "",
    parent_id: FormText = "",
) -> Response:
    _require(db, viewer, Privilege.WRITE, "business_unit")

    def change() -> None:
        target = parse_form(ByBu, bu_id=bu_id).bu_id
        body = parse_form(s.BusinessUnitPatch, name=name, parent_id=parent_id)
        if body.name is None and body.parent_id is None:
            raise ValidationFailed("enter a new name or choose a new parent", field="name")
        service.update_bu(
            db=db,
            bu_id=target,
            name=body.name,
            parent_id=body.parent_id,
            principal=viewer.principal,
        )

    if refused := _attempt(db, "update", change):
        error, status = refused
        values = {"bu_id": bu_id, "name": name, "parent_id": parent_id}
        return _bu_page(request, db, viewer, error=error, status_code=status, values=values)
    return _back("/admin/business-units")


@router.post("/business-units/{bu_id}/delete", response_class=HTMLResponse)
def delete_bu(
    request: Request, bu_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    _require(db, viewer, Privilege.DELETE, "business_unit")
    service.get_bu(db=db, bu_id=bu_id, field="bu_id")
    if refused := _attempt(
        db,
        f"delete-{bu_id}",
        lambda: service.delete_bu(db=db, bu_id=bu_id, principal=viewer.principal),
    ):
        error, status = refused
        return _bu_page(request, db, viewer, error=error, status_code=status)
    return _back("/admin/business-units")


# ------------------------------------------------------------------ users


def _bu_names(db: Session, viewer: Viewer) -> dict[int, str] | None:
    """BU names by id, or None when the viewer may not read BUs (pages then show ids)."""
    if not _can(db, viewer, Privilege.READ, "business_unit"):
        return None
    return {bu.id: bu.name for bu in service.list_bus(db=db)}


def _users_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    q: str = "",
    error: FormError | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    _require(db, viewer, Privilege.READ, "user")
    users, total = service.list_users(db=db, search=q)
    roles = None
    if _can(db, viewer, Privilege.READ, "security_role"):
        roles = service.role_names_by_user(db=db, user_ids={u.id for u in users})
    bu_names = _bu_names(db, viewer)
    return page(
        request,
        "admin/users.html",
        viewer,
        status_code=status_code,
        users=users,
        total=total,
        q=q,
        roles=roles,
        bu_names=bu_names,
        may_create=bu_names is not None and _can(db, viewer, Privilege.CREATE, "user"),
        error=error,
        values=values or {},
    )


@router.get("/users", response_class=HTMLResponse)
def users(request: Request, db: WebDb, viewer: CurrentViewer, q: str = "") -> Response:
    return _users_page(request, db, viewer, q=q[:200])


@router.post("/users", response_class=HTMLResponse)
def create_user(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    username: FormText = "",
    full_name: FormText = "",
    email: FormText = "",
    business_unit_id: FormText = "",
    password: FormText = "",
) -> Response:
    _require(db, viewer, Privilege.CREATE, "user")
    created: list[int] = []

    def change() -> None:
        body = parse_form(
            s.UserIn,
            username=username,
            full_name=full_name,
            email=email,
            business_unit_id=business_unit_id,
            password=password,
        )
        user = service.create_user(db=db, principal=viewer.principal, **body.model_dump())
        created.append(user.id)

    if refused := _attempt(db, "create", change):
        error, status = refused
        values = {
            "username": username,
            "full_name": full_name,
            "email": email,
            "business_unit_id": business_unit_id,
        }
        return _users_page(request, db, viewer, error=error, status_code=status, values=values)
    return _back(f"/admin/users/{created[0]}")


def _user_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    user_id: int,
    *,
    error: FormError | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    _require(db, viewer, Privilege.READ, "user")
    user = service.get_user(db=db, user_id=user_id)
    read_roles = _can(db, viewer, Privilege.READ, "security_role")
    bu_names = _bu_names(db, viewer)
    return page(
        request,
        "admin/user.html",
        viewer,
        status_code=status_code,
        user=user,
        bu_names=bu_names,
        roles=service.roles_of_user(db=db, user_id=user.id) if read_roles else None,
        all_roles=service.list_roles(db=db) if read_roles else [],
        teams=(
            service.teams_of_user(db=db, user_id=user.id)
            if _can(db, viewer, Privilege.READ, "team")
            else None
        ),
        may_write=_can(db, viewer, Privilege.WRITE, "user"),
        may_move=bu_names is not None and _can(db, viewer, Privilege.WRITE, "user"),
        may_assign=read_roles and _can(db, viewer, Privilege.ASSIGN, "security_role"),
        error=error,
    )


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_detail(request: Request, user_id: PathId, db: WebDb, viewer: CurrentViewer) -> Response:
    return _user_page(request, db, viewer, user_id)


@router.post("/users/{user_id}/disabled", response_class=HTMLResponse)
def set_disabled(
    request: Request,
    user_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    disabled: FormText = "",
) -> Response:
    def change() -> None:
        if disabled not in ("true", "false"):
            raise ValidationFailed("choose disable or enable", field="disabled")
        service.update_user(
            db=db,
            user_id=user_id,
            disabled=disabled == "true",
            principal=viewer.principal,
        )

    write = (Privilege.WRITE, "user")
    return _holder_change(request, db, viewer, "users", user_id, write, "disabled", change)


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    user_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    new_password: Annotated[str, Form(max_length=1000)] = "",
    confirm_password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """Set a user's password (write on users); the user's browsers are signed out."""

    def change() -> None:
        body = parse_form(NewPassword, new_password=new_password, confirm_password=confirm_password)
        service.set_password(
            db=db, user_id=user_id, password=body.checked(), principal=viewer.principal
        )
        keep = viewer.session_id if user_id == viewer.user.id else None
        auth.end_all(db, user_id=user_id, keep_id=keep)

    write = (Privilege.WRITE, "user")
    return _holder_change(request, db, viewer, "users", user_id, write, "password", change)


@router.post("/users/{user_id}/move", response_class=HTMLResponse)
def move_user(
    request: Request,
    user_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    business_unit_id: FormText = "",
    move_records: FormText = "",
) -> Response:
    def change() -> None:
        body = parse_form(
            s.UserPatch,
            business_unit_id=business_unit_id,
            move_records="true" if move_records else "false",
        )
        if body.business_unit_id is None:
            raise ValidationFailed("choose a business unit", field="business_unit_id")
        service.move_user(
            db=db,
            user_id=user_id,
            business_unit_id=body.business_unit_id,
            move_records=body.move_records,
            principal=viewer.principal,
        )

    write = (Privilege.WRITE, "user")
    return _holder_change(request, db, viewer, "users", user_id, write, "move", change)


# ------------------------------------------------------------------ teams


@router.get("/teams", response_class=HTMLResponse)
def teams(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    _require(db, viewer, Privilege.READ, "team")
    return page(
        request,
        "admin/teams.html",
        viewer,
        teams=service.list_teams(db=db),
        members=service.member_counts(db=db),
        bu_names=_bu_names(db, viewer),
    )


def _team_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    team_id: int,
    *,
    error: FormError | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    _require(db, viewer, Privilege.READ, "team")
    team = service.get_team(db=db, team_id=team_id)
    read_roles = _can(db, viewer, Privilege.READ, "security_role")
    bu_names = _bu_names(db, viewer)
    return page(
        request,
        "admin/team.html",
        viewer,
        status_code=status_code,
        team=team,
        bu_names=bu_names,
        members=service.team_members(db=db, team_id=team.id),
        read_users=_can(db, viewer, Privilege.READ, "user"),
        roles=service.roles_of_team(db=db, team_id=team.id) if read_roles else None,
        all_roles=service.list_roles(db=db) if read_roles else [],
        may_edit_members=not team.is_default and _can(db, viewer, Privilege.WRITE, "team"),
        may_assign=read_roles and _can(db, viewer, Privilege.ASSIGN, "security_role"),
        error=error,
        values=values or {},
    )


@router.get("/teams/{team_id}", response_class=HTMLResponse)
def team_detail(request: Request, team_id: PathId, db: WebDb, viewer: CurrentViewer) -> Response:
    return _team_page(request, db, viewer, team_id)


@router.post("/teams/{team_id}/members", response_class=HTMLResponse)
def add_member(
    request: Request,
    team_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    username: FormText = "",
) -> Response:
    def change() -> None:
        if not username.strip():
            raise ValidationFailed("enter a username", field="username")
        user = service.get_user_by_username(db=db, username=username.strip())
        service.add_member(db=db, team_id=team_id, user_id=user.id, principal=viewer.principal)

    write = (Privilege.WRITE, "team")
    values = {"username": username}
    return _holder_change(request, db, viewer, "teams", team_id, write, "members", change, values)


@router.post("/teams/{team_id}/members/{user_id}/delete", response_class=HTMLResponse)
def remove_member(
    request: Request,
    team_id: PathId,
    user_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
) -> Response:
    def change() -> None:
        service.remove_member(db=db, team_id=team_id, user_id=user_id, principal=viewer.principal)

    write = (Privilege.WRITE, "team")
    return _holder_change(request, db, viewer, "teams", team_id, write, "members", change)


# ------------------------------------------------------------------ role holders

# Users and teams hold roles; a change on either page goes the same way.
Holder = Literal["users", "teams"]
ASSIGN = (Privilege.ASSIGN, "security_role")


def _holder_change(
    request: Request,
    db: Session,
    viewer: Viewer,
    holder: Holder,
    holder_id: int,
    privilege: tuple[Privilege, str],
    form: str,
    change: Callable[[], None],
    values: dict[str, str] | None = None,
) -> Response:
    """The shape of every change on a user's or a team's page: check, find the record,
    change or explain."""
    _require(db, viewer, *privilege)
    show = _user_page if holder == "users" else _team_page
    if holder == "users":
        service.get_user(db=db, user_id=holder_id)
    else:
        service.get_team(db=db, team_id=holder_id)
    if refused := _attempt(db, form, change):
        error, status = refused
        return show(request, db, viewer, holder_id, error=error, status_code=status, values=values)
    return _back(f"/admin/{holder}/{holder_id}")


def _holder_key(holder: Holder, holder_id: int) -> dict[str, int]:
    return {"user_id" if holder == "users" else "team_id": holder_id}


@router.post("/{holder}/{holder_id}/roles", response_class=HTMLResponse)
def assign_role(
    request: Request,
    holder: Holder,
    holder_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    role_id: FormText = "",
) -> Response:
    def change() -> None:
        body = parse_form(s.RoleRef, role_id=role_id)
        key = _holder_key(holder, holder_id)
        service.assign_role(db=db, role_id=body.role_id, principal=viewer.principal, **key)

    return _holder_change(request, db, viewer, holder, holder_id, ASSIGN, "assign", change)


@router.post("/{holder}/{holder_id}/roles/{role_id}/delete", response_class=HTMLResponse)
def unassign_role(
    request: Request,
    holder: Holder,
    holder_id: PathId,
    role_id: PathId,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
) -> Response:
    def change() -> None:
        key = _holder_key(holder, holder_id)
        service.unassign_role(db=db, role_id=role_id, principal=viewer.principal, **key)

    return _holder_change(request, db, viewer, holder, holder_id, ASSIGN, "assign", change)


# ------------------------------------------------------------------ roles


@router.get("/roles", response_class=HTMLResponse)
def roles(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    _require(db, viewer, Privilege.READ, "security_role")
    return page(request, "admin/roles.html", viewer, roles=service.list_roles(db=db))


@router.get("/roles/{role_id}", response_class=HTMLResponse)
def role_detail(request: Request, role_id: PathId, db: WebDb, viewer: CurrentViewer) -> Response:
    _require(db, viewer, Privilege.READ, "security_role")
    role = service.get_role(db=db, role_id=role_id)
    return page(
        request,
        "admin/role.html",
        viewer,
        role=role,
        matrix=service.role_privileges(db=db, role_id=role.id),
        record_types=registry.all_types(),
        privileges=list(Privilege),
        level_words=LEVEL_WORDS,
    )


# ------------------------------------------------------------------ settings

SETTINGS_ACTIONS = ("feature.", "settings.")


class PolicyForm(BaseModel):
    """The token policy form: an empty field means never / no maximum."""

    default_days: Annotated[int, Field(ge=1, le=service.MAX_TOKEN_DAYS)] | None = None
    max_days: Annotated[int, Field(ge=1, le=service.MAX_TOKEN_DAYS)] | None = None


def _settings_page(
    request: Request,
    db: Session,
    viewer: Viewer,
    *,
    error: FormError | None = None,
    status_code: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    # Which switches are on and how long tokens live are for anyone signed in (as
    # GET /admin/features and /admin/token-policy); the changes and their trail are for
    # system administrators (as GET /admin/audit, PUT).
    entries: list[audit.AuditEntry] = []
    if viewer.is_admin:
        for prefix in SETTINGS_ACTIONS:
            found = service.audit_trail(
                db=db, principal=viewer.principal, filters=audit.Filters(action=prefix), limit=10
            )
            entries.extend(found.items)
        entries = sorted(entries, key=lambda e: e.id, reverse=True)[:10]
    policy = service.token_policy(db=db)
    return page(
        request,
        "admin/settings.html",
        viewer,
        status_code=status_code,
        features=service.features(db=db),
        labels=service.FEATURES,
        entries=entries,
        policy=policy,
        values=values
        or {
            "default_days": str(policy.default_days or ""),
            "max_days": str(policy.max_days or ""),
        },
        max_token_days=service.MAX_TOKEN_DAYS,
        error=error,
    )


@router.get("/settings", response_class=HTMLResponse)
def settings(request: Request, db: WebDb, viewer: CurrentViewer) -> Response:
    return _settings_page(request, db, viewer)


@router.post("/settings/token-policy", response_class=HTMLResponse)
def set_token_policy(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    default_days: FormText = "",
    max_days: FormText = "",
) -> Response:
    service.require_admin(viewer.principal)

    def change() -> None:
        body = parse_form(PolicyForm, default_days=default_days, max_days=max_days)
        service.set_token_policy(
            db=db,
            principal=viewer.principal,
            default_days=body.default_days,
            max_days=body.max_days,
        )

    if refused := _attempt(db, "token-policy", change):
        error, status = refused
        values = {"default_days": default_days, "max_days": max_days}
        return _settings_page(request, db, viewer, error=error, status_code=status, values=values)
    return _back("/admin/settings")


@router.post("/settings/{name}", response_class=HTMLResponse)
def set_feature(
    request: Request,
    name: str,
    db: WebDb,
    viewer: CurrentViewer,
    _: CsrfChecked,
    enabled: FormText = "",
) -> Response:
    _require_admin(viewer)
    if name not in service.FEATURES:
        raise NotFound(f"unknown feature {name!r}")

    def change() -> None:
        if enabled not in ("true", "false"):
            raise ValidationFailed("choose on or off", field="enabled")
        service.set_feature(
            db=db, name=name, enabled=enabled == "true", by_user_id=viewer.principal.user_id
        )

    if refused := _attempt(db, f"feature-{name}", change):
        error, status = refused
        return _settings_page(request, db, viewer, error=error, status_code=status)
    return _back("/admin/settings")


# ------------------------------------------------------------------ audit trail

AUDIT_PAGE_SIZE = 50
AUDIT_FIELDS = ("action", "actor", "target_type", "target_id", "since", "until")


def _day(text: str, field: str, *, end: bool = False) -> datetime | None:
    """A ``YYYY-MM-DD`` field as the UTC instant the day starts (or, for ``end``, the next
    day starts, so the day is included)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
        start = datetime.combine(day, time.min, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    except (ValueError, OverflowError):
        raise ValidationFailed("give a date as YYYY-MM-DD", field=field) from None


@router.get("/audit", response_class=HTMLResponse)
def audit_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    action: Annotated[str, Query(max_length=60)] = "",
    actor: Annotated[str, Query(max_length=120)] = "",
    target_type: Annotated[str, Query(max_length=60)] = "",
    target_id: Annotated[str, Query(max_length=64)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """The audit trail with the API's filters (dates are whole UTC days), newest first."""
    _require_admin(viewer)
    values = {
        "action": action.strip(),
        "actor": actor.strip(),
        "target_type": target_type.strip(),
        "target_id": target_id.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    error: FormError | None = None
    items: list[audit.AuditEntry] = []
    next_url = None
    try:
        filters = audit.Filters(
            action=values["action"] or None,
            actor=values["actor"] or None,
            target_type=values["target_type"] or None,
            target_id=values["target_id"] or None,
            since=_day(values["since"], "since"),
            until=_day(values["until"], "until", end=True),
        )
        found = service.audit_trail(
            db=db,
            principal=viewer.principal,
            filters=filters,
            cursor=cursor or None,
            limit=AUDIT_PAGE_SIZE,
        )
    except ValidationFailed as exc:
        error = FormError("audit", exc.field if exc.field in AUDIT_FIELDS else None, exc.message)
    else:
        items = list(found.items)
        if found.next_cursor:
            next_url = (
                "/admin/audit?" + request.url.include_query_params(cursor=found.next_cursor).query
            )
    first_url = None
    if cursor:
        first_url = "/admin/audit?" + request.url.remove_query_params("cursor").query
    return page(
        request,
        "admin/audit.html",
        viewer,
        status_code=422 if error else 200,
        entries=items,
        values=values,
        families=audit.ACTION_FAMILIES,
        error=error,
        next_url=next_url,
        first_url=first_url,
    )


# ------------------------------------------------------------------ everyone's API tokens

TOKENS_PAGE_SIZE = 50


@router.get("/tokens", response_class=HTMLResponse)
def tokens_page(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    user: Annotated[str, Query(max_length=120)] = "",
    status: Annotated[str, Query(max_length=20)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    """Every user's tokens with revoke (system administrators)."""
    _require_admin(viewer)
    values = {"user": user.strip(), "status": status.strip()}
    error: FormError | None = None
    items: list[Any] = []
    names: dict[int, str] = {}
    next_url = None
    try:
        user_id = None
        if values["user"]:
            try:
                user_id = service.get_user_by_username(db=db, username=values["user"]).id
            except NotFound:
                raise ValidationFailed(f"no user named {values['user']!r}", field="user") from None
        found = service.all_tokens(
            db=db,
            principal=viewer.principal,
            user_id=user_id,
            status=values["status"] or None,
            cursor=cursor or None,
            limit=TOKENS_PAGE_SIZE,
        )
    except ValidationFailed as exc:
        error = FormError("tokens", exc.field, exc.message)
    else:
        items = list(found.items)
        names = service.usernames(db=db, user_ids={t.user_id for t in items})
        if found.next_cursor:
            next_url = (
                "/admin/tokens?" + request.url.include_query_params(cursor=found.next_cursor).query
            )
    first_url = None
    if cursor:
        first_url = "/admin/tokens?" + request.url.remove_query_params("cursor").query
    return page(
        request,
        "admin/tokens.html",
        viewer,
        status_code=422 if error else 200,
        tokens=items,
        names=names,
        values=values,
        statuses=service.TOKEN_STATUSES,
        error=error,
        next_url=next_url,
        first_url=first_url,
    )


@router.post("/tokens/{token_id}/revoke", response_class=HTMLResponse)
def revoke_token(
    request: Request, token_id: PathId, db: WebDb, viewer: CurrentViewer, _: CsrfChecked
) -> Response:
    service.revoke_any_token(db=db, principal=viewer.principal, token_id=token_id)
    return _back("/admin/tokens")


# ------------------------------------------------------------------ explain access


def _explain(
    db: Session, viewer: Viewer, username: str, record_type: str, record_id: str, privilege: str
) -> access.Explanation:
    """The API's explain (the same service), from form text."""
    try:
        wanted = Privilege(privilege)
    except ValueError:
        raise ValidationFailed(f"unknown privilege {privilege!r}", field="privilege") from None
    wanted_id = None
    if record_id.strip():
        wanted_id = parse_id(record_id)
        if wanted_id is None:
            raise ValidationFailed("a record id is a positive whole number", field="record_id")
    return service.explain_access(
        db=db,
        principal=viewer.principal,
        record_type=record_type,
        privilege=wanted,
        record_id=wanted_id,
        user=username or None,
    )


@router.get("/explain", response_class=HTMLResponse)
def explain(
    request: Request,
    db: WebDb,
    viewer: CurrentViewer,
    username: str = "",
    record_type: str = "",
    record_id: str = "",
    privilege: str = "read",
) -> Response:
    username = username.strip()[:120]
    values = {
        "username": username or viewer.user.username,
        "record_type": record_type,
        "record_id": record_id[:20],
        "privilege": privilege,
    }
    answer: access.Explanation | None = None
    error: FormError | None = None
    status_code = 200
    if record_type:
        try:
            answer = _explain(db, viewer, username, record_type, record_id[:20], privilege)
        except FormErrors as exc:
            field = exc.field if exc.field != "user_id" else "username"
            error = FormError("explain", field or "username", exc.message)
            status_code = 422 if isinstance(exc, NotFound) else exc.status_code
    context: dict[str, Any] = {
        "values": values,
        "record_types": registry.all_types(),
        "privileges": list(Privilege),
        "answer": answer,
        "path_words": PATH_WORDS,
        "error": error,
    }
    return page(request, "admin/explain.html", viewer, status_code=status_code, **context)
