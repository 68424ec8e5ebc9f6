"""Organisation invariants: the closure table, default teams, roles and tokens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.access.models import BusinessUnitClosure
from gatherly.core.exceptions import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from gatherly.org import defaults
from gatherly.org import service as org
from gatherly.org.models import BusinessUnit, RolePrivilege, SecurityRole
from tests import factories as f
from tests.conftest import reset_database


def _closure(db: Session) -> set[tuple[int, int, int]]:
    return {
        (r.ancestor_id, r.descendant_id, r.depth)
        for r in db.execute(select(BusinessUnitClosure)).scalars()
    }


def _closure_from_parents(db: Session) -> set[tuple[int, int, int]]:
    parents = {b.id: b.parent_id for b in db.execute(select(BusinessUnit)).scalars()}
    rows = set()
    for bu_id in parents:
        cur: int | None = bu_id
        depth = 0
        while cur is not None:
            rows.add((cur, bu_id, depth))
            cur = parents[cur]
            depth += 1
    return rows


@settings(max_examples=25, deadline=None)
@given(moves=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 6)), max_size=8))
def _reparent_property(engine: Engine, moves: list[tuple[int, int]]) -> None:
    reset_database(engine)
    with Session(engine) as db:
        ids = [org.get_root(db=db).id]
        for i in range(1, 7):
            ids.append(org.create_bu(db=db, name=f"N{i}", parent_id=ids[(i - 1) // 2]).id)
        for child, parent in moves:
            if ids[parent] in org.subtree_ids(db=db, bu_id=ids[child]):
                with pytest.raises(ValidationFailed, match="under itself"):
                    org.update_bu(db=db, bu_id=ids[child], parent_id=ids[parent])
            else:
                org.update_bu(db=db, bu_id=ids[child], parent_id=ids[parent])
            assert _closure(db) == _closure_from_parents(db)
        db.rollback()


def test_closure_table_matches_the_tree_after_any_reparenting(engine: Engine) -> None:
    _reparent_property(engine)


def test_every_bu_gets_a_default_team_named_after_it(db: Session) -> None:
    bu = f.bu(db, "Nordics")
    team = org.default_team(db=db, bu_id=bu.id)
    assert team.name == "Nordics"
    assert team.is_default
    org.update_bu(db=db, bu_id=bu.id, name="Nordic countries")
    assert org.default_team(db=db, bu_id=bu.id).name == "Nordic countries"


def test_default_team_is_removed_with_its_bu(db: Session) -> None:
    bu = f.bu(db, "Short lived")
    team_id = org.default_team(db=db, bu_id=bu.id).id
    org.delete_bu(db=db, bu_id=bu.id)
    with pytest.raises(NotFound):
        org.get_team(db=db, team_id=team_id)


def test_default_team_cannot_be_deleted_or_renamed(db: Session) -> None:
    bu = f.bu(db, "Fixed")
    team = org.default_team(db=db, bu_id=bu.id)
    with pytest.raises(Conflict):
        org.delete_team(db=db, team_id=team.id)
    with pytest.raises(Conflict):
        org.update_team(db=db, team_id=team.id, name="Other")


def test_names_are_unique_case_insensitively(db: Session) -> None:
    f.bu(db, "Sales")
    with pytest.raises(Conflict) as err:
        f.bu(db, "sales")
    assert err.value.field == "name"
    f.user(db, "Kim")
    with pytest.raises(Conflict):
        f.user(db, "kim")
    # Letters beyond ASCII too (SQLite's own lower() folds ASCII only), and the exact name
    # the unique constraint holds: a Conflict each time, never the database's error.
    for taken, again in (("Æsir", "æsir"), ("Œuvre \u00a0\x86%", "Œuvre \u00a0\x86%")):
        f.bu(db, taken)
        with pytest.raises(Conflict) as err:
            f.bu(db, again)
        assert err.value.field == "name"


def test_team_owning_records_cannot_be_deleted(db: Session) -> None:
    bu = f.bu(db, "Owners BU")
    team = f.team(db, "Owning team", bu)
    f.contact(db, team)
    with pytest.raises(Conflict, match="still owns records"):
        org.delete_team(db=db, team_id=team.id)


def test_moving_a_team_moves_the_records_it_owns(db: Session) -> None:
    a, b = f.bu(db, "From"), f.bu(db, "To")
    team = f.team(db, "Movers", a)
    record = f.contact(db, team)
    org.update_team(db=db, team_id=team.id, business_unit_id=b.id)
    db.refresh(record)
    assert record.owning_bu_id == b.id


def test_role_privileges_are_validated_with_the_field_named(db: Session) -> None:
    with pytest.raises(ValidationFailed) as err:
        org.validate_privileges({"contact": {"read": "galaxy"}})
    assert err.value.field == "privileges.contact.read"
    with pytest.raises(ValidationFailed) as err:
        org.validate_privileges({"contact": {"peek": "user"}})
    assert err.value.field == "privileges.contact.peek"
    with pytest.raises(ValidationFailed) as err:
        org.validate_privileges({"widget": {"read": "user"}})
    assert err.value.field == "privileges.widget"
    with pytest.raises(ValidationFailed) as err:
        org.validate_privileges({"business_unit": {"read": "business_unit"}})
    assert "organization-owned" in err.value.message
    assert org.validate_privileges({"contact": {"read": "parent_child", "write": 1}}) == {
        "contact": {"read": Level.PARENT_CHILD, "write": Level.USER}
    }


def test_builtin_roles_are_refreshed_and_cannot_be_edited(db: Session) -> None:
    marketer = org.get_role_by_name(db=db, name="Marketer")
    db.execute(RolePrivilege.__table__.delete().where(RolePrivilege.role_id == marketer.id))
    defaults.ensure_defaults(db)
    assert org.role_privileges(db=db, role_id=marketer.id)["contact"]["read"] == Level.BUSINESS_UNIT
    with pytest.raises(Conflict):
        org.update_role(db=db, role_id=marketer.id, name="Renamed")
    with pytest.raises(Conflict):
        org.delete_role(db=db, role_id=marketer.id)
    names = set(db.execute(select(SecurityRole.name).where(SecurityRole.is_builtin)).scalars())
    assert names == {r.name for r in defaults.BUILTIN_ROLES}


def test_tokens_are_stored_hashed_and_revocable(db: Session) -> None:
    u = f.user(db, "tok")
    token, secret = org.create_token(db=db, user_id=u.id, name="laptop")
    assert secret.startswith("gly_")
    assert secret not in (token.token_hash, token.prefix)
    assert org.authenticate_token(db=db, secret=secret).id == u.id
    org.revoke_token(db=db, user_id=u.id, token_id=token.id)
    with pytest.raises(Unauthenticated):
        org.authenticate_token(db=db, secret=secret)


def test_disabled_user_tokens_are_refused(db: Session) -> None:
    u = f.user(db, "tok2")
    _token, secret = org.create_token(db=db, user_id=u.id)
    org.update_user(db=db, user_id=u.id, disabled=True)
    with pytest.raises(Unauthenticated, match="disabled"):
        org.authenticate_token(db=db, secret=secret)


def test_passwords_are_argon2_hashed_and_verified(db: Session) -> None:
    u = org.create_user(db=db, username="pw", password="correct horse")
    assert u.password_hash is not None
    assert u.password_hash.startswith("$argon2")
    assert org.verify_password(db=db, username="pw", password="correct horse").id == u.id
    with pytest.raises(Unauthenticated):
        org.verify_password(db=db, username="pw", password="wrong horse")
    with pytest.raises(ValidationFailed):
        org.set_password(db=db, user_id=u.id, password="short")


def test_token_use_is_recorded_at_most_once_per_interval(db: Session) -> None:
    u = f.user(db, "tok3")
    token, secret = org.create_token(db=db, user_id=u.id)
    org.authenticate_token(db=db, secret=secret)
    first = token.last_used_at
    assert first is not None
    org.authenticate_token(db=db, secret=secret)
    assert token.last_used_at == first  # a second request soon after writes nothing
    token.last_used_at = first - org.TOKEN_USE_RESOLUTION
    org.authenticate_token(db=db, secret=secret)
    assert token.last_used_at is not None
    assert token.last_used_at > first - org.TOKEN_USE_RESOLUTION


def test_the_service_checks_the_callers_privileges_itself(db: Session) -> None:
    """Called for a user (a principal), every change and read of the directory is checked
    by the service, whatever interface calls it; nothing changes when it is refused."""
    marketer = f.principal(db, f.user(db, "mia", None, "Marketer"))
    admin = f.principal(db, f.user(db, "ada", None, "System Administrator"))
    root = org.get_root(db=db)
    other = f.user(db, "olaf")
    role = org.get_role_by_name(db=db, name="Marketer")
    db.commit()
    before = org.org_totals(db=db)
    refused = [
        lambda p: org.create_bu(db=db, name="X", parent_id=root.id, principal=p),
        lambda p: org.create_user(db=db, username="x", principal=p),
        lambda p: org.update_user(db=db, user_id=other.id, full_name="X", principal=p),
        lambda p: org.create_team(db=db, name="T", business_unit_id=root.id, principal=p),
        lambda p: org.assign_role(db=db, role_id=role.id, user_id=other.id, principal=p),
        lambda p: org.create_role(db=db, name="R", privileges={}, principal=p),
    ]
    for change in refused:
        with pytest.raises(Forbidden):
            change(marketer)
        db.rollback()
    assert org.org_totals(db=db) == before
    # Reading the directory takes read on its record types, which every built-in role has.
    assert org.list_users(db=db, principal=marketer)[1] == 3
    nobody = f.principal(db, f.user(db, "nora"))
    with pytest.raises(Forbidden):
        org.list_users(db=db, principal=nobody)
    # An administrator passes the same checks; the operator (no principal) is not checked.
    org.create_bu(db=db, name="X", parent_id=root.id, principal=admin)
    org.create_bu(db=db, name="Y", parent_id=root.id)
