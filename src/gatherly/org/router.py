"""Admin routes for BUs, users, teams, roles, role assignments, API tokens, feature
switches and the audit trail.

BUs, users, teams and roles are organization-owned record types: reading them needs the
read privilege at organization level (every built-in role has it), changing them needs
create/write/delete (System Administrator).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from gatherly.access.levels import Privilege
from gatherly.api.deps import CurrentPrincipal, DbSession, no_content
from gatherly.api.params import Paging, PathId, QueryId
from gatherly.contact.schemas import PageOut
from gatherly.core import audit
from gatherly.org import schemas as s
from gatherly.org import service
from gatherly.org.models import ApiToken, FeatureSwitch, SecurityRole, Team

router = APIRouter(tags=["organisation"])


def _role_out(db: Session, role: SecurityRole) -> s.RoleOut:
    privileges = service.role_privileges(db=db, role_id=role.id)
    return s.RoleOut(
        id=role.id,
        name=role.name,
        description=role.description,
        is_system_admin=role.is_system_admin,
        is_builtin=role.is_builtin,
        privileges={t: {p: lv.label for p, lv in privs.items()} for t, privs in privileges.items()},
    )


@router.get("/me", tags=["me"], summary="Who you are and what your roles grant")
def me(db: DbSession, principal: CurrentPrincipal) -> s.MeOut:
    user = service.get_user(db=db, user_id=principal.user_id)
    return s.MeOut(
        user=s.UserOut.model_validate(user),
        system_administrator=principal.is_system_admin,
        teams=sorted(principal.team_ids),
        grants=[
            s.GrantOut(
                record_type=g.record_type,
                privilege=g.privilege,
                level=g.level.label,
                anchor_bu_id=g.anchor_bu_id,
                role=g.role_name,
                team=g.team_name,
            )
            for g in principal.grants
        ],
    )


# ------------------------------------------------------------------ business units


@router.get("/business-units", tags=["business units"])
def list_bus(db: DbSession, principal: CurrentPrincipal) -> list[s.BusinessUnitOut]:
    rows = service.list_bus(db=db, principal=principal)
    return [s.BusinessUnitOut.model_validate(r) for r in rows]


@router.post("/business-units", status_code=201, tags=["business units"])
def create_bu(
    body: s.BusinessUnitIn, db: DbSession, principal: CurrentPrincipal
) -> s.BusinessUnitOut:
    bu = service.create_bu(
        db=db,
        name=body.name,
        parent_id=body.parent_id,
        description=body.description,
        principal=principal,
    )
    return s.BusinessUnitOut.model_validate(bu)


@router.get("/business-units/{bu_id}", tags=["business units"])
def get_bu(bu_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.BusinessUnitOut:
    bu = service.get_bu(db=db, bu_id=bu_id, field="bu_id", principal=principal)
    return s.BusinessUnitOut.model_validate(bu)


@router.patch(
    "/business-units/{bu_id}",
    tags=["business units"],
    summary="Rename, describe or re-parent a business unit",
)
def patch_bu(
    bu_id: PathId, body: s.BusinessUnitPatch, db: DbSession, principal: CurrentPrincipal
) -> s.BusinessUnitOut:
    bu = service.update_bu(
        db=db,
        bu_id=bu_id,
        name=body.name,
        description=body.description,
        parent_id=body.parent_id,
        principal=principal,
    )
    return s.BusinessUnitOut.model_validate(bu)


@router.delete(
    "/business-units/{bu_id}",
    status_code=204,
    tags=["business units"],
    summary="Delete an empty business unit",
)
def delete_bu(bu_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_bu(db=db, bu_id=bu_id, principal=principal)
    return no_content()


# ------------------------------------------------------------------ users


@router.get("/users", tags=["users"])
def list_users(
    db: DbSession, principal: CurrentPrincipal, business_unit_id: QueryId = None
) -> list[s.UserOut]:
    users, _total = service.list_users(
        db=db, business_unit_id=business_unit_id, limit=None, principal=principal
    )
    return [s.UserOut.model_validate(u) for u in users]


@router.post("/users", status_code=201, tags=["users"])
def create_user(body: s.UserIn, db: DbSession, principal: CurrentPrincipal) -> s.UserOut:
    user = service.create_user(db=db, principal=principal, **body.model_dump())
    return s.UserOut.model_validate(user)


@router.get("/users/{user_id}", tags=["users"])
def get_user(user_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.UserOut:
    return s.UserOut.model_validate(service.get_user(db=db, user_id=user_id, principal=principal))


@router.patch(
    "/users/{user_id}",
    tags=["users"],
    summary="Change a user; business_unit_id moves them (records follow unless move_records=false)",
)
def patch_user(
    user_id: PathId, body: s.UserPatch, db: DbSession, principal: CurrentPrincipal
) -> s.UserOut:
    changes = body.model_dump(include=body.model_fields_set & {"full_name", "email", "disabled"})
    user = service.update_user(db=db, user_id=user_id, principal=principal, **changes)
    if body.business_unit_id is not None:
        user = service.move_user(
            db=db,
            user_id=user_id,
            business_unit_id=body.business_unit_id,
            move_records=body.move_records,
            principal=principal,
        )
    return s.UserOut.model_validate(user)


@router.get("/users/{user_id}/roles", tags=["users"])
def user_roles(user_id: PathId, db: DbSession, principal: CurrentPrincipal) -> list[s.RoleOut]:
    roles = service.roles_of_user(db=db, user_id=user_id, principal=principal)
    service.get_user(db=db, user_id=user_id)
    return [_role_out(db, r) for r in roles]


@router.post("/users/{user_id}/roles", status_code=204, tags=["users"])
def assign_user_role(
    user_id: PathId, body: s.RoleRef, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.assign_role(db=db, role_id=body.role_id, user_id=user_id, principal=principal)
    return no_content()


@router.delete("/users/{user_id}/roles/{role_id}", status_code=204, tags=["users"])
def unassign_user_role(
    user_id: PathId, role_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.unassign_role(db=db, role_id=role_id, user_id=user_id, principal=principal)
    return no_content()


# ------------------------------------------------------------------ your API tokens


def _token_out(token: ApiToken) -> s.TokenOut:
    return s.TokenOut.model_validate(token)


@router.post(
    "/me/password",
    status_code=204,
    tags=["me"],
    summary="Change your own password (needs the current one; API tokens keep working)",
)
def change_my_password(
    body: s.PasswordChangeIn, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.change_password(
        db=db, principal=principal, current=body.current_password, new=body.new_password
    )
    return no_content()


@router.put(
    "/me/time-zone",
    tags=["me"],
    summary="Set the time zone the web pages show you times in (null: your browser's)",
)
def set_my_time_zone(body: s.TimeZoneIn, db: DbSession, principal: CurrentPrincipal) -> s.UserOut:
    user = service.set_time_zone(db=db, principal=principal, time_zone=body.time_zone)
    return s.UserOut.model_validate(user)


@router.get("/me/tokens", tags=["tokens"], summary="Your API tokens, newest first")
def list_my_tokens(db: DbSession, principal: CurrentPrincipal) -> list[s.TokenOut]:
    return [_token_out(t) for t in service.my_tokens(db=db, principal=principal)]


@router.post(
    "/me/tokens",
    status_code=201,
    tags=["tokens"],
    summary="Create an API token for yourself; the secret is in this response only",
)
def create_my_token(body: s.TokenIn, db: DbSession, principal: CurrentPrincipal) -> s.TokenCreated:
    token, secret = service.create_my_token(
        db=db,
        principal=principal,
        name=body.name,
        expires_in_days=body.expires_in_days,
        expires_at=body.expires_at,
        never_expires=body.never_expires,
    )
    return s.TokenCreated(**_token_out(token).model_dump(), token=secret)


@router.delete(
    "/me/tokens/{token_id}",
    status_code=204,
    tags=["tokens"],
    summary="Revoke one of your tokens (anyone else's answers 404)",
)
def revoke_my_token(token_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.revoke_my_token(db=db, principal=principal, token_id=token_id)
    return no_content()


# ------------------------------------------------------------------ teams


def _team_out(team: Team) -> s.TeamOut:
    return s.TeamOut.model_validate(team)


@router.get("/teams", tags=["teams"])
def list_teams(db: DbSession, principal: CurrentPrincipal) -> list[s.TeamOut]:
    return [_team_out(t) for t in service.list_teams(db=db, principal=principal)]


@router.post("/teams", status_code=201, tags=["teams"])
def create_team(body: s.TeamIn, db: DbSession, principal: CurrentPrincipal) -> s.TeamOut:
    return _team_out(
        service.create_team(
            db=db,
            name=body.name,
            business_unit_id=body.business_unit_id,
            description=body.description,
            principal=principal,
        )
    )


@router.get("/teams/{team_id}", tags=["teams"])
def get_team(team_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.TeamOut:
    return _team_out(service.get_team(db=db, team_id=team_id, principal=principal))


@router.patch("/teams/{team_id}", tags=["teams"])
def patch_team(
    team_id: PathId, body: s.TeamPatch, db: DbSession, principal: CurrentPrincipal
) -> s.TeamOut:
    return _team_out(
        service.update_team(
            db=db,
            team_id=team_id,
            name=body.name,
            description=body.description,
            business_unit_id=body.business_unit_id,
            principal=principal,
        )
    )


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"])
def delete_team(team_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_team(db=db, team_id=team_id, principal=principal)
    return no_content()


@router.get("/teams/{team_id}/members", tags=["teams"])
def team_members(team_id: PathId, db: DbSession, principal: CurrentPrincipal) -> list[s.UserOut]:
    service.get_team(db=db, team_id=team_id, principal=principal)
    return [s.UserOut.model_validate(u) for u in service.team_members(db=db, team_id=team_id)]


@router.post("/teams/{team_id}/members", status_code=204, tags=["teams"])
def add_member(
    team_id: PathId, body: s.MemberIn, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.add_member(db=db, team_id=team_id, user_id=body.user_id, principal=principal)
    return no_content()


@router.delete("/teams/{team_id}/members/{user_id}", status_code=204, tags=["teams"])
def remove_member(
    team_id: PathId, user_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.remove_member(db=db, team_id=team_id, user_id=user_id, principal=principal)
    return no_content()


@router.get("/teams/{team_id}/roles", tags=["teams"])
def team_roles(team_id: PathId, db: DbSession, principal: CurrentPrincipal) -> list[s.RoleOut]:
    roles = service.roles_of_team(db=db, team_id=team_id, principal=principal)
    service.get_team(db=db, team_id=team_id)
    return [_role_out(db, r) for r in roles]


@router.post("/teams/{team_id}/roles", status_code=204, tags=["teams"])
def assign_team_role(
    team_id: PathId, body: s.RoleRef, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.assign_role(db=db, role_id=body.role_id, team_id=team_id, principal=principal)
    return no_content()


@router.delete("/teams/{team_id}/roles/{role_id}", status_code=204, tags=["teams"])
def unassign_team_role(
    team_id: PathId, role_id: PathId, db: DbSession, principal: CurrentPrincipal
) -> Response:
    service.unassign_role(db=db, role_id=role_id, team_id=team_id, principal=principal)
    return no_content()


# ------------------------------------------------------------------ roles


@router.get("/roles", tags=["roles"])
def list_roles(db: DbSession, principal: CurrentPrincipal) -> list[s.RoleOut]:
    return [_role_out(db, r) for r in service.list_roles(db=db, principal=principal)]


@router.post("/roles", status_code=201, tags=["roles"])
def create_role(body: s.RoleIn, db: DbSession, principal: CurrentPrincipal) -> s.RoleOut:
    privileges = body.privileges
    return _role_out(
        db,
        service.create_role(
            db=db,
            name=body.name,
            description=body.description,
            privileges=privileges,
            principal=principal,
        ),
    )


@router.get("/roles/{role_id}", tags=["roles"])
def get_role(role_id: PathId, db: DbSession, principal: CurrentPrincipal) -> s.RoleOut:
    return _role_out(db, service.get_role(db=db, role_id=role_id, principal=principal))


@router.patch(
    "/roles/{role_id}", tags=["roles"], summary="Change a custom role (privileges replace the set)"
)
def patch_role(
    role_id: PathId, body: s.RolePatch, db: DbSession, principal: CurrentPrincipal
) -> s.RoleOut:
    privileges = body.privileges
    role = service.update_role(
        db=db,
        role_id=role_id,
        name=body.name,
        description=body.description,
        privileges=privileges,
        principal=principal,
    )
    return _role_out(db, role)


@router.delete("/roles/{role_id}", status_code=204, tags=["roles"])
def delete_role(role_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.delete_role(db=db, role_id=role_id, principal=principal)
    return no_content()


# ------------------------------------------------------------------ features, tokens, audit


def _feature_out(switch: FeatureSwitch) -> s.FeatureOut:
    return s.FeatureOut(
        name=switch.name,
        label=service.FEATURES[switch.name],
        enabled=bool(switch.enabled),
        changed_at=switch.changed_at,
        changed_by_id=switch.changed_by_id,
    )


@router.get("/admin/features", tags=["settings"], summary="Installation-wide feature switches")
def list_features(db: DbSession, principal: CurrentPrincipal) -> list[s.FeatureOut]:
    return [_feature_out(f) for f in service.features(db=db)]


@router.put(
    "/admin/features/{name}",
    tags=["settings"],
    summary="Turn a switch on or off (system administrators; audited)",
)
def set_feature(
    name: str, body: s.FeatureIn, db: DbSession, principal: CurrentPrincipal
) -> s.FeatureOut:
    service.require_admin(principal)
    switch = service.set_feature(
        db=db, name=name, enabled=body.enabled, by_user_id=principal.user_id
    )
    return _feature_out(switch)


def _policy_out(policy: service.TokenPolicy) -> s.TokenPolicyOut:
    return s.TokenPolicyOut(
        default_days=policy.default_days,
        max_days=policy.max_days,
        allows_never=policy.allows_never,
    )


@router.get(
    "/admin/token-policy",
    tags=["tokens"],
    summary="How long API tokens live (anyone signed in: the limits of their own tokens)",
)
def get_token_policy(db: DbSession, principal: CurrentPrincipal) -> s.TokenPolicyOut:
    return _policy_out(service.token_policy(db=db))


@router.put(
    "/admin/token-policy",
    tags=["tokens"],
    summary="Set the default and maximum token lifetime (system administrators; audited)",
)
def put_token_policy(
    body: s.TokenPolicyIn, db: DbSession, principal: CurrentPrincipal
) -> s.TokenPolicyOut:
    policy = service.set_token_policy(
        db=db, principal=principal, default_days=body.default_days, max_days=body.max_days
    )
    return _policy_out(policy)


@router.get(
    "/admin/tokens",
    tags=["tokens"],
    summary="Everyone's API tokens, newest first (system administrators)",
    response_model=PageOut[s.AdminTokenOut],
)
def list_all_tokens(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    user_id: QueryId = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> Any:
    page = service.all_tokens(
        db=db,
        principal=principal,
        user_id=user_id,
        status=status,
        cursor=paging.cursor,
        limit=paging.limit,
    )
    names = service.usernames(db=db, user_ids={t.user_id for t in page.items})
    items = [
        s.AdminTokenOut(
            **_token_out(t).model_dump(), user_id=t.user_id, username=names.get(t.user_id, "")
        )
        for t in page.items
    ]
    return {"items": items, "next_cursor": page.next_cursor}


@router.delete(
    "/admin/tokens/{token_id}",
    status_code=204,
    tags=["tokens"],
    summary="Revoke anyone's token (system administrators; audited)",
)
def revoke_any_token(token_id: PathId, db: DbSession, principal: CurrentPrincipal) -> Response:
    service.revoke_any_token(db=db, principal=principal, token_id=token_id)
    return no_content()


@router.get(
    "/admin/audit",
    tags=["settings"],
    summary="The audit trail, newest first (system administrators)",
    response_model=PageOut[s.AuditOut],
)
def list_audit(
    db: DbSession,
    principal: CurrentPrincipal,
    paging: Paging,
    action: Annotated[
        str | None, Query(max_length=60, description="Action prefix: role, role.assign …")
    ] = None,
    actor_id: QueryId = None,
    actor: Annotated[
        str | None, Query(max_length=120, description="The actor's username as recorded")
    ] = None,
    target_type: Annotated[str | None, Query(max_length=60)] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="At or after (ISO 8601 with a zone)")
    ] = None,
    until: Annotated[datetime | None, Query(description="Before (ISO 8601 with a zone)")] = None,
) -> Any:
    filters = audit.Filters(
        action=action,
        actor_id=actor_id,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        since=since,
        until=until,
    )
    page = service.audit_trail(
        db=db, principal=principal, filters=filters, cursor=paging.cursor, limit=paging.limit
    )
    return {
        "items": [s.AuditOut.model_validate(e) for e in page.items],
        "next_cursor": page.next_cursor,
    }


# ------------------------------------------------------------------ access explained


@router.get(
    "/access/explain",
    tags=["access"],
    summary="Explain which role, level, ownership or share grants or denies a privilege",
)
def explain(
    db: DbSession,
    principal: CurrentPrincipal,
    record_type: str,
    record_id: QueryId = None,
    privilege: Privilege = Privilege.READ,
    user_id: QueryId = None,
) -> dict[str, Any]:
    """Your own access is always yours to explain; another user's needs write on users."""
    explanation = service.explain_access(
        db=db,
        principal=principal,
        record_type=record_type,
        privilege=privilege,
        record_id=record_id,
        user=user_id,
    )
    return explanation.as_dict()
