"""The audit trail (issue 12): every security-relevant change of the organisation writes one
entry in its own transaction (who, when, what, before, after), and the trail is searched
by action prefix, actor, target and time, a page at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from gatherly.access.engine import Principal
from gatherly.access.levels import Level
from gatherly.core import audit
from gatherly.core.audit import AuditEntry
from gatherly.core.exceptions import Forbidden, ValidationFailed
from gatherly.org import defaults
from gatherly.org import service as org
from tests import factories as f


@pytest.fixture
def boss(db: Session) -> Principal:
    """A system administrator's principal: the actor of the changes here."""
    return f.principal(db, f.user(db, "boss", None, "System Administrator"))


def _entries(db: Session, action: str) -> list[AuditEntry]:
    """The entries of ``action`` someone made (the setup's own, by the system, left out)."""
    stmt = select(AuditEntry).where(AuditEntry.action == action, AuditEntry.actor_id.is_not(None))
    return list(db.execute(stmt.order_by(AuditEntry.id)).scalars())


def _one(db: Session, action: str) -> AuditEntry:
    found = _entries(db, action)
    assert len(found) == 1, [(e.action, e.target_label) for e in found]
    return found[0]


def _count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(AuditEntry)).scalar_one())


def _by(entry: AuditEntry, boss: Principal) -> None:
    assert (entry.actor_id, entry.actor_name) == (boss.user_id, "boss")
    assert entry.at.tzinfo is not None
    assert datetime.now(UTC) - entry.at < timedelta(minutes=1)


# ------------------------------------------------------------------ business units


def test_bu_create_rename_move_describe_and_delete_are_audited(
    db: Session, boss: Principal
) -> None:
    root = org.get_root(db=db)
    europe = org.create_bu(db=db, name="Europe", parent_id=root.id, principal=boss)
    created = _one(db, "business_unit.create")
    _by(created, boss)
    assert (created.target_type, created.target_id, created.target_label) == (
        "business_unit",
        str(europe.id),
        "Europe",
    )
    assert created.before is None
    assert created.after == {
        "name": "Europe",
        "description": "",
        "parent_id": root.id,
        "parent": root.name,
    }

    asia = org.create_bu(db=db, name="Asia", parent_id=root.id, principal=boss)
    org.update_bu(db=db, bu_id=europe.id, name="EMEA", parent_id=asia.id, principal=boss)
    renamed, moved = _one(db, "business_unit.rename"), _one(db, "business_unit.move")
    assert (renamed.before, renamed.after, renamed.target_label) == (
        {"name": "Europe"},
        {"name": "EMEA"},
        "EMEA",
    )
    assert (moved.before, moved.after) == (
        {"parent_id": root.id, "parent": root.name},
        {"parent_id": asia.id, "parent": "Asia"},
    )
    org.update_bu(db=db, bu_id=europe.id, description="Europe, Middle East, Africa", principal=boss)
    described = _one(db, "business_unit.update")
    assert described.after == {"description": "Europe, Middle East, Africa"}

    unchanged = _count(db)
    org.update_bu(db=db, bu_id=europe.id, name="EMEA", parent_id=asia.id, principal=boss)
    assert _count(db) == unchanged  # nothing changed, nothing recorded

    org.delete_bu(db=db, bu_id=europe.id, principal=boss)
    deleted = _one(db, "business_unit.delete")
    assert (deleted.target_id, deleted.target_label, deleted.after) == (
        str(europe.id),
        "EMEA",
        None,
    )
    assert deleted.before is not None
    assert deleted.before["name"] == "EMEA"
    assert deleted.before["parent"] == "Asia"


def test_a_refused_change_writes_no_entry_and_a_rollback_takes_the_entry_with_it(
    db: Session, boss: Principal
) -> None:
    germany = org.create_bu(db=db, name="Germany", parent_id=org.get_root(db=db).id, principal=boss)
    f.user(db, "gustav", germany)
    db.commit()
    before = _count(db)
    with pytest.raises(Exception, match="still has"):
        org.delete_bu(db=db, bu_id=germany.id, principal=boss)
    assert _count(db) == before
    org.create_bu(db=db, name="Doomed", parent_id=germany.id, principal=boss)
    assert _count(db) == before + 1
    db.rollback()  # the change and its entry commit or vanish together
    assert _count(db) == before


# ------------------------------------------------------------------ users


def test_user_create_disable_enable_edit_move_and_password_are_audited(
    db: Session, boss: Principal
) -> None:
    root = org.get_root(db=db)
    sales = org.create_bu(db=db, name="Sales", parent_id=root.id)
    user = org.create_user(
        db=db,
        username="ulla",
        email="ulla@example.com",
        full_name="Ulla",
        business_unit_id=sales.id,
        password="a long password",
        principal=boss,
    )
    created = _one(db, "user.create")
    _by(created, boss)
    assert (created.target_type, created.target_id, created.target_label) == (
        "user",
        str(user.id),
        "ulla",
    )
    assert created.after == {
        "username": "ulla",
        "full_name": "Ulla",
        "email": "ulla@example.com",
        "business_unit_id": sales.id,
        "business_unit": "Sales",
        "disabled": False,
        "password_set": True,
    }
    assert user.password_hash is not None
    assert user.password_hash not in json.dumps(created.after)

    org.update_user(db=db, user_id=user.id, disabled=True, principal=boss)
    org.update_user(db=db, user_id=user.id, disabled=False, principal=boss)
    disabled, enabled = _one(db, "user.disable"), _one(db, "user.enable")
    assert (disabled.before, disabled.after) == ({"disabled": False}, {"disabled": True})
    assert (enabled.before, enabled.after) == ({"disabled": True}, {"disabled": False})
    _by(enabled, boss)

    org.update_user(db=db, user_id=user.id, full_name="Ulla U.", email=None, principal=boss)
    edited = _one(db, "user.update")
    assert (edited.before, edited.after) == (
        {"full_name": "Ulla", "email": "ulla@example.com"},
        {"full_name": "Ulla U.", "email": None},
    )

    org.move_user(
        db=db, user_id=user.id, business_unit_id=root.id, move_records=False, principal=boss
    )
    moved = _one(db, "user.move")
    assert (moved.before, moved.after, moved.details) == (
        {"business_unit_id": sales.id, "business_unit": "Sales"},
        {"business_unit_id": root.id, "business_unit": root.name},
        {"move_records": False},
    )

    org.set_password(db=db, user_id=user.id, password="another long one", principal=boss)
    password = _one(db, "user.password")
    assert (password.before, password.after) == ({"password_set": True}, {"password_set": True})
    assert "another long one" not in json.dumps([password.before, password.after])


def test_the_actor_may_be_a_user_id_a_user_row_or_the_system(db: Session) -> None:
    boss = f.user(db, "boss", None, "System Administrator")
    for actor, expected in ((boss.id, "boss"), (boss, "boss"), (None, "")):
        entry = audit.log(db, actor=actor, action="test.actor")
        assert (entry.actor_id, entry.actor_name) == (
            (boss.id if expected else None),
            expected,
        )


# ------------------------------------------------------------------ teams


def test_team_create_update_membership_and_delete_are_audited(db: Session, boss: Principal) -> None:
    root = org.get_root(db=db)
    sales = org.create_bu(db=db, name="Sales", parent_id=root.id)
    ann, bob = f.user(db, "ann", sales), f.user(db, "bob", sales)
    team = org.create_team(db=db, name="Launch", business_unit_id=sales.id, principal=boss)
    created = _one(db, "team.create")
    _by(created, boss)
    assert (created.target_type, created.target_id, created.after) == (
        "team",
        str(team.id),
        {
            "name": "Launch",
            "description": "",
            "business_unit_id": sales.id,
            "business_unit": "Sales",
        },
    )

    org.add_member(db=db, team_id=team.id, user_id=ann.id, principal=boss)
    org.add_member(db=db, team_id=team.id, user_id=ann.id, principal=boss)  # already a member
    org.add_member(db=db, team_id=team.id, user_id=bob.id, principal=boss)
    added = _entries(db, "team.member_add")
    assert [(e.target_label, e.before, e.after) for e in added] == [
        ("Launch", None, {"user_id": ann.id, "username": "ann"}),
        ("Launch", None, {"user_id": bob.id, "username": "bob"}),
    ]
    org.remove_member(db=db, team_id=team.id, user_id=bob.id, principal=boss)
    removed = _one(db, "team.member_remove")
    assert (removed.before, removed.after) == ({"user_id": bob.id, "username": "bob"}, None)

    org.update_team(
        db=db, team_id=team.id, name="Launch crew", business_unit_id=root.id, principal=boss
    )
    updated = _one(db, "team.update")
    assert (updated.before, updated.after) == (
        {"name": "Launch", "business_unit_id": sales.id, "business_unit": "Sales"},
        {"name": "Launch crew", "business_unit_id": root.id, "business_unit": root.name},
    )

    marketer = org.get_role_by_name(db=db, name="Marketer")
    org.assign_role(db=db, role_id=marketer.id, team_id=team.id, principal=boss)
    org.delete_team(db=db, team_id=team.id, principal=boss)
    deleted = _one(db, "team.delete")
    assert deleted.before is not None
    assert (deleted.before["members"], deleted.before["roles"]) == (["ann"], ["Marketer"])
    assert deleted.after is None


# ------------------------------------------------------------------ roles


def test_role_create_privilege_edit_assignments_and_delete_are_audited(
    db: Session, boss: Principal
) -> None:
    sales = org.create_bu(db=db, name="Sales", parent_id=org.get_root(db=db).id)
    ann = f.user(db, "ann", sales)
    team = org.create_team(db=db, name="Crew", business_unit_id=sales.id)
    role = org.create_role(
        db=db,
        name="Reader",
        privileges={"contact": {"read": Level.BUSINESS_UNIT, "write": Level.NONE}},
        principal=boss,
    )
    created = _one(db, "role.create")
    _by(created, boss)
    assert (created.target_type, created.target_id, created.target_label) == (
        "security_role",
        str(role.id),
        "Reader",
    )
    assert created.after == {
        "name": "Reader",
        "description": "",
        "privileges": {"contact": {"read": "business_unit"}},
    }

    org.update_role(
        db=db,
        role_id=role.id,
        privileges={"contact": {"read": Level.ORGANIZATION, "write": Level.USER}},
        principal=boss,
    )
    edited = _one(db, "role.update")
    assert (edited.before, edited.after) == (
        {"privileges": {"contact": {"read": "business_unit"}}},
        {"privileges": {"contact": {"read": "organization", "write": "user"}}},
    )

    org.assign_role(db=db, role_id=role.id, user_id=ann.id, principal=boss)
    org.assign_role(db=db, role_id=role.id, user_id=ann.id, principal=boss)  # already held
    org.assign_role(db=db, role_id=role.id, team_id=team.id, principal=boss)
    assigned = _entries(db, "role.assign")
    assert [(e.target_type, e.target_id, e.target_label, e.after) for e in assigned] == [
        ("user", str(ann.id), "ann", {"role_id": role.id, "role": "Reader"}),
        ("team", str(team.id), "Crew", {"role_id": role.id, "role": "Reader"}),
    ]
    org.unassign_role(db=db, role_id=role.id, team_id=team.id, principal=boss)
    unassigned = _one(db, "role.unassign")
    assert (unassigned.target_type, unassigned.before, unassigned.after) == (
        "team",
        {"role_id": role.id, "role": "Reader"},
        None,
    )

    org.delete_role(db=db, role_id=role.id, principal=boss)
    deleted = _one(db, "role.delete")
    assert deleted.before == {
        "name": "Reader",
        "description": "",
        "privileges": {"contact": {"read": "organization", "write": "user"}},
        "users": ["ann"],
        "teams": [],
    }


def test_an_upgrade_that_changes_nothing_audits_nothing(db: Session) -> None:
    before = _count(db)
    defaults.ensure_defaults(db)
    assert _count(db) == before
    # The first install recorded each built-in role, by the system.
    made = _trail(db, action="role.builtin_create")
    assert len(made) == len(defaults.BUILTIN_ROLES)
    assert {(e.actor_id, e.actor_name) for e in made} == {(None, "")}


# ------------------------------------------------------------------ tokens and switches


def test_token_create_and_revoke_are_audited_without_the_secret(
    db: Session, boss: Principal
) -> None:
    ann = f.user(db, "ann")
    token, secret = org.create_token(db=db, user_id=ann.id, name="laptop", actor=boss)
    created = _one(db, "token.create")
    _by(created, boss)
    assert (created.target_type, created.target_id) == ("api_token", str(token.id))
    assert created.target_label == f"laptop ({token.prefix}…) of ann"
    assert created.after is not None
    assert created.after["username"] == "ann"
    assert token.expires_at is not None
    assert datetime.fromisoformat(created.after["expires_at"]) == token.expires_at
    assert secret not in json.dumps([created.before, created.after, created.details])
    assert token.token_hash not in json.dumps(created.after)

    org.revoke_token(db=db, token_id=token.id, actor=boss)
    org.revoke_token(db=db, token_id=token.id, actor=boss)  # again: nothing changes
    revoked = _one(db, "token.revoke")
    assert revoked.before == {"revoked_at": None}
    assert revoked.after is not None
    assert datetime.fromisoformat(revoked.after["revoked_at"]) == token.revoked_at


def test_feature_switches_are_audited_in_the_new_shape(db: Session, boss: Principal) -> None:
    org.set_feature(db=db, name=org.SEGMENT_TOTALS, enabled=True, by_user_id=boss.user_id)
    entry = _one(db, "feature.set")
    _by(entry, boss)
    assert (entry.target_type, entry.target_id, entry.target_label) == (
        "feature",
        org.SEGMENT_TOTALS,
        org.FEATURES[org.SEGMENT_TOTALS],
    )
    assert (entry.before, entry.after) == ({"enabled": False}, {"enabled": True})


# ------------------------------------------------------------------ searching the trail


def _trail(db: Session, **filters: object) -> list[AuditEntry]:
    page = org.audit_trail(db=db, principal=None, filters=audit.Filters(**filters), limit=500)  # type: ignore[arg-type]
    return list(page.items)


def test_the_trail_filters_by_action_prefix_actor_target_and_time(
    db: Session, boss: Principal
) -> None:
    other = f.principal(db, f.user(db, "other", None, "System Administrator"))
    sales = org.create_bu(db=db, name="Sales", parent_id=org.get_root(db=db).id, principal=boss)
    ann = org.create_user(db=db, username="ann", business_unit_id=sales.id, principal=other)
    marketer = org.get_role_by_name(db=db, name="Marketer")
    org.assign_role(db=db, role_id=marketer.id, user_id=ann.id, principal=boss)
    org.unassign_role(db=db, role_id=marketer.id, user_id=ann.id, principal=other)

    assert [e.action for e in _trail(db, action="role.")] == ["role.unassign", "role.assign"] + [
        "role.assign"
    ] * 2 + ["role.builtin_create"] * len(defaults.BUILTIN_ROLES)
    assert [e.action for e in _trail(db, action="role.un")] == ["role.unassign"]
    assert {e.action for e in _trail(db, action="user")} == {"user.create"}
    # "%" and "_" in a prefix are letters, not wildcards.
    assert _trail(db, action="%") == []
    assert _trail(db, action="role_") == []

    assert {e.action for e in _trail(db, actor="OTHER")} == {"user.create", "role.unassign"}
    assert {e.action for e in _trail(db, actor_id=boss.user_id)} == {
        "business_unit.create",
        "role.assign",
    }
    about_ann = _trail(db, target_type="user", target_id=str(ann.id))
    assert [e.action for e in about_ann] == ["role.unassign", "role.assign", "user.create"]

    # Time: move the Sales entry a day back and filter around it.
    created = _one(db, "user.create")
    day_ago = datetime.now(UTC) - timedelta(days=1)
    db.execute(update(AuditEntry).where(AuditEntry.id == created.id).values(at=day_ago))
    db.flush()
    db.expire_all()
    hour = timedelta(hours=1)
    old = _trail(db, since=day_ago - hour, until=day_ago + hour)
    assert [e.id for e in old] == [created.id]
    recent = _trail(db, since=day_ago + hour)
    assert created.id not in {e.id for e in recent}
    assert recent
    # Any zone: the same instant written in Tokyo time.
    tokyo = (day_ago - hour).astimezone(datetime.fromisoformat("2026-01-01T00:00+09:00").tzinfo)
    assert [e.id for e in _trail(db, since=tokyo, until=day_ago + hour)] == [created.id]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"since": datetime(2026, 1, 1)}, "since"),
        ({"until": datetime(2026, 1, 1)}, "until"),
        ({"since": datetime.fromisoformat("9999-12-31T23:59:59-14:00")}, "since"),
        ({"until": datetime.fromisoformat("0001-01-01T00:00:00+14:00")}, "until"),
        (
            {
                "since": datetime(2026, 2, 1, tzinfo=UTC),
                "until": datetime(2026, 1, 1, tzinfo=UTC),
            },
            "until",
        ),
    ],
)
def test_bad_times_are_refused_naming_the_field(
    db: Session, filters: dict[str, datetime], field: str
) -> None:
    with pytest.raises(ValidationFailed) as err:
        _trail(db, **filters)
    assert err.value.field == field


def test_the_trail_pages_newest_first_with_a_cursor(db: Session, boss: Principal) -> None:
    for i in range(7):
        audit.log(db, actor=boss, action="test.page", target_id=i)
    seen: list[int] = []
    cursor = None
    while True:
        page = org.audit_trail(
            db=db, principal=boss, filters=audit.Filters(action="test."), cursor=cursor, limit=3
        )
        seen.extend(e.id for e in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(seen) == 7 == len(set(seen))
    assert seen == sorted(seen, reverse=True)
    with pytest.raises(ValidationFailed) as err:
        org.audit_trail(db=db, principal=boss, filters=audit.Filters(), cursor="forged")
    assert err.value.field == "cursor"


def test_only_system_administrators_read_the_trail(db: Session) -> None:
    for role in ("Marketing Administrator", "Marketer"):
        reader = f.principal(db, f.user(db, role.replace(" ", "_").lower(), None, role))
        with pytest.raises(Forbidden):
            org.audit_trail(db=db, principal=reader, filters=audit.Filters())
