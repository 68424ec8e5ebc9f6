"""Every access level and every edge case of bu-security §2.6, one test per rule."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from gatherly.access.engine import can, can_create_in, explain
from gatherly.access.levels import Level, Privilege
from gatherly.contact import service as contact_service
from gatherly.contact.schemas import OwnerRef
from gatherly.core.exceptions import Conflict, Forbidden, ValidationFailed
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from tests import factories as f
from tests.access.helpers import visible

READ, WRITE = Privilege.READ, Privilege.WRITE


@pytest.fixture
def tree(db: Session) -> dict[str, int]:
    """The reference's acceptance tree: Root → {A → {A1}, B}, with c1 in A, c2 in A1, c3 in B."""
    a = f.bu(db, "A")
    a1 = f.bu(db, "A1", a)
    b = f.bu(db, "B")
    owner_a = f.user(db, "owner_a", a, "Marketing Assistant")
    owner_a1 = f.user(db, "owner_a1", a1, "Marketing Assistant")
    owner_b = f.user(db, "owner_b", b, "Marketing Assistant")
    c1 = f.contact(db, owner_a, email="c1@x.example")
    c2 = f.contact(db, owner_a1, email="c2@x.example")
    c3 = f.contact(db, owner_b, email="c3@x.example")
    return {
        "A": a.id,
        "A1": a1.id,
        "B": b.id,
        "c1": c1.id,
        "c2": c2.id,
        "c3": c3.id,
        "root": org.get_root(db=db).id,
    }


def _bu(db: Session, tree: dict[str, int], name: str):  # type: ignore[no-untyped-def]
    return org.get_bu(db=db, bu_id=tree[name])


def test_acceptance_readable_sets(db: Session, tree: dict[str, int]) -> None:
    ua = f.user(db, "uA", _bu(db, tree, "A"), "Marketer")
    ua_deep = f.user(db, "uA_deep", _bu(db, tree, "A"), "Marketing Manager")
    uroot = f.user(db, "uRoot", None, "Marketer")
    uorg = f.user(db, "uOrg", _bu(db, tree, "A1"), "Marketing Administrator")
    c1, c2, c3 = tree["c1"], tree["c2"], tree["c3"]
    assert visible(db, ua) == {c1}
    assert visible(db, ua_deep) == {c1, c2}
    assert visible(db, uroot) == set()
    assert visible(db, uorg) == {c1, c2, c3}


def test_user_level_sees_own_records_not_others_in_same_bu(
    db: Session, tree: dict[str, int]
) -> None:
    a = _bu(db, tree, "A")
    basic = f.user(db, "basic", a, "Marketing Assistant")
    mine = f.contact(db, basic)
    assert visible(db, basic) == {mine.id}  # c1 is in the same BU but owned by someone else


def test_bu_level_user_in_root_does_not_see_child_bu_records(
    db: Session, tree: dict[str, int]
) -> None:
    root_user = f.user(db, "root_marketer", None, "Marketer")
    in_root = f.contact(db, root_user)
    assert visible(db, root_user) == {in_root.id}


def test_parent_child_includes_the_anchor_bu_and_all_descendants(
    db: Session, tree: dict[str, int]
) -> None:
    deep = f.user(db, "deep", _bu(db, tree, "A"), "Marketing Manager")
    assert visible(db, deep) == {tree["c1"], tree["c2"]}
    leaf = f.user(db, "leaf_deep", _bu(db, tree, "A1"), "Marketing Manager")
    assert visible(db, leaf) == {tree["c2"]}


def test_parent_child_at_root_sees_the_whole_tree(db: Session, tree: dict[str, int]) -> None:
    top = f.user(db, "top", None, "Marketing Manager")
    assert visible(db, top) == {tree["c1"], tree["c2"], tree["c3"]}


def test_organization_level_sees_every_record(db: Session, tree: dict[str, int]) -> None:
    admin = f.user(db, "mkt_admin", _bu(db, tree, "B"), "Marketing Administrator")
    assert visible(db, admin) == {tree["c1"], tree["c2"], tree["c3"]}


def test_system_administrator_has_every_privilege(db: Session, tree: dict[str, int]) -> None:
    sysadmin = f.user(db, "sys", _bu(db, tree, "A1"), "System Administrator")
    assert visible(db, sysadmin, Privilege.DELETE) == {tree["c1"], tree["c2"], tree["c3"]}
    assert can(db, load_principal(db, sysadmin.id), Privilege.CREATE, "business_unit")


def test_no_role_means_no_access(db: Session, tree: dict[str, int]) -> None:
    nobody = f.user(db, "nobody", _bu(db, tree, "A"))
    mine = f.contact(db, nobody)
    assert visible(db, nobody) == set()
    result = explain(db, load_principal(db, nobody.id), READ, "contact", mine)
    assert not result.allowed
    assert "privilege check" in result.summary


def test_privilege_is_checked_before_ownership(db: Session, tree: dict[str, int]) -> None:
    reader = f.role(db, "Read only", Level.USER, privileges=("read",))
    u = f.user(db, "reader", _bu(db, tree, "A"), reader)
    mine = f.contact(db, u)
    p = load_principal(db, u.id)
    assert can(db, p, READ, "contact", mine)
    assert not can(db, p, WRITE, "contact", mine)  # owner, but no write privilege at all
    assert visible(db, u, WRITE) == set()


def test_team_owned_record_counts_as_the_team_bu(db: Session, tree: dict[str, int]) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    team_in_b = f.team(db, "Team B", b)
    record = f.contact(db, team_in_b)
    assert record.owning_bu_id == b.id
    ub = f.user(db, "ub_local", b, "Marketer")
    ua = f.user(db, "ua_local", a, "Marketer")
    assert record.id in visible(db, ub)
    assert record.id not in visible(db, ua)


def test_team_member_reaches_team_owned_records(db: Session, tree: dict[str, int]) -> None:
    b = _bu(db, tree, "B")
    member = f.user(db, "member", _bu(db, tree, "A"), "Marketing Assistant")
    team = f.team(db, "Owners", b, member)
    owned = f.contact(db, team)
    assert visible(db, member) == {owned.id}


def test_team_role_at_bu_level_grants_the_team_bu_not_the_member_bu(
    db: Session, tree: dict[str, int]
) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    member = f.user(db, "member_ab", a)
    f.team(db, "B readers", b, member, roles=("Marketer",))
    assert visible(db, member) == {tree["c3"]}  # B's record, not A's


def test_team_role_privileges_apply_to_the_member_own_records(
    db: Session, tree: dict[str, int]
) -> None:
    b = _bu(db, tree, "B")
    member = f.user(db, "member_own", _bu(db, tree, "A1"))
    f.team(db, "B team", b, member, roles=("Marketer",))
    mine = f.contact(db, member)
    assert visible(db, member) == {tree["c3"], mine.id}


def test_share_of_read_to_a_user_grants_read(db: Session, tree: dict[str, int]) -> None:
    basic = f.user(db, "basic_share", _bu(db, tree, "B"), "Marketing Assistant")
    admin = f.user(db, "sharer", None, "System Administrator")
    contact_service.share(
        db=db,
        principal=load_principal(db, admin.id),
        kind=contact_service.CONTACT,
        record_id=tree["c1"],
        share_in=_share("user", basic.id, "read"),
    )
    assert visible(db, basic) == {tree["c1"]}
    assert visible(db, basic, WRITE) == set()


def test_share_to_a_team_reaches_its_members(db: Session, tree: dict[str, int]) -> None:
    basic = f.user(db, "basic_team_share", _bu(db, tree, "B"), "Marketing Assistant")
    team = f.team(db, "Share team", _bu(db, tree, "B"), basic)
    admin = f.user(db, "sharer2", None, "System Administrator")
    contact_service.share(
        db=db,
        principal=load_principal(db, admin.id),
        kind=contact_service.CONTACT,
        record_id=tree["c2"],
        share_in=_share("team", team.id, "read", "write"),
    )
    assert visible(db, basic) == {tree["c2"]}
    assert visible(db, basic, WRITE) == {tree["c2"]}


def test_share_to_the_organization_reaches_everyone_with_the_privilege(
    db: Session, tree: dict[str, int]
) -> None:
    basic = f.user(db, "basic_org_share", _bu(db, tree, "B"), "Marketing Assistant")
    roleless = f.user(db, "roleless", _bu(db, tree, "B"))
    admin = f.user(db, "sharer3", None, "System Administrator")
    contact_service.share(
        db=db,
        principal=load_principal(db, admin.id),
        kind=contact_service.CONTACT,
        record_id=tree["c1"],
        share_in=_share("organization", None, "read"),
    )
    assert visible(db, basic) == {tree["c1"]}
    assert visible(db, roleless) == set()  # a share never exceeds the privilege


def test_share_of_write_to_a_user_without_write_privilege_gives_no_write(
    db: Session, tree: dict[str, int]
) -> None:
    reader = f.role(db, "Reader", Level.USER, privileges=("read",))
    u = f.user(db, "reads_only", _bu(db, tree, "B"), reader)
    admin = f.user(db, "sharer4", None, "System Administrator")
    contact_service.share(
        db=db,
        principal=load_principal(db, admin.id),
        kind=contact_service.CONTACT,
        record_id=tree["c1"],
        share_in=_share("user", u.id, "read", "write"),
    )
    assert visible(db, u) == {tree["c1"]}
    assert visible(db, u, WRITE) == set()
    result = explain(db, load_principal(db, u.id), WRITE, "contact", _contact(db, tree["c1"]))
    assert not result.allowed


def test_leaving_a_team_removes_its_paths_at_once(db: Session, tree: dict[str, int]) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    member = f.user(db, "leaver", a, "Marketing Assistant")
    team = f.team(db, "B crew", b, member, roles=("Marketer",))
    owned = f.contact(db, team)
    assert visible(db, member) == {tree["c3"], owned.id}
    org.remove_member(db=db, team_id=team.id, user_id=member.id)
    assert visible(db, member) == set()


def test_disabled_user_keeps_ownership_but_gets_no_access(
    db: Session, tree: dict[str, int]
) -> None:
    u = f.user(db, "soon_disabled", _bu(db, tree, "A"), "Marketing Manager")
    mine = f.contact(db, u)
    org.update_user(db=db, user_id=u.id, disabled=True)
    assert visible(db, u) == set()
    assert _contact(db, mine.id).owner_id == u.id
    assert "disabled" in explain(db, load_principal(db, u.id), READ, "contact", mine).summary


def test_owner_keeps_access_when_the_record_stays_in_the_old_bu(
    db: Session, tree: dict[str, int]
) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    u = f.user(db, "mover", a, "Marketer")
    mine = f.contact(db, u)
    org.move_user(db=db, user_id=u.id, business_unit_id=b.id, move_records=False)
    assert _contact(db, mine.id).owning_bu_id == a.id
    assert visible(db, u) == {mine.id, tree["c3"]}  # owner access to the old record + B by role


def test_user_moved_to_another_bu_takes_records_and_sees_the_new_bu(
    db: Session, tree: dict[str, int]
) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    u = f.user(db, "mover2", a, "Marketer")
    mine = f.contact(db, u)
    assert visible(db, u) == {tree["c1"], mine.id}
    org.move_user(db=db, user_id=u.id, business_unit_id=b.id)
    assert _contact(db, mine.id).owning_bu_id == b.id
    assert visible(db, u) == {tree["c3"], mine.id}


def test_default_team_role_reaches_every_bu_member_and_follows_moves(
    db: Session, tree: dict[str, int]
) -> None:
    a, b = _bu(db, tree, "A"), _bu(db, tree, "B")
    org.assign_role(
        db=db,
        role_id=org.get_role_by_name(db=db, name="Marketer").id,
        team_id=org.default_team(db=db, bu_id=a.id).id,
    )
    u = f.user(db, "joins_a", a)
    assert tree["c1"] in visible(db, u)
    org.move_user(db=db, user_id=u.id, business_unit_id=b.id)
    assert visible(db, u) == set()


def test_default_team_membership_cannot_be_edited_by_hand(
    db: Session, tree: dict[str, int]
) -> None:
    u = f.user(db, "someone", _bu(db, tree, "B"))
    default_a = org.default_team(db=db, bu_id=tree["A"])
    with pytest.raises(Conflict):
        org.add_member(db=db, team_id=default_a.id, user_id=u.id)
    members = {
        m.username
        for m in org.team_members(db=db, team_id=org.default_team(db=db, bu_id=tree["B"]).id)
    }
    assert members == {"owner_b", "someone"}


def test_record_reassigned_moves_to_the_new_owner_bu(db: Session, tree: dict[str, int]) -> None:
    admin = f.user(db, "assigner", None, "System Administrator")
    ub = f.user(db, "new_owner", _bu(db, tree, "B"), "Marketing Assistant")
    before = f.user(db, "ua_watch", _bu(db, tree, "A"), "Marketer")
    assert tree["c1"] in visible(db, before)
    record = contact_service.assign(
        db=db,
        principal=load_principal(db, admin.id),
        kind=contact_service.CONTACT,
        record_id=tree["c1"],
        owner=OwnerRef(type="user", id=ub.id),
    )
    assert record.owning_bu_id == tree["B"]
    assert tree["c1"] not in visible(db, before)
    assert tree["c1"] in visible(db, ub)


def test_assign_to_an_owner_without_read_privilege_is_refused(
    db: Session, tree: dict[str, int]
) -> None:
    admin = f.user(db, "assigner2", None, "System Administrator")
    roleless = f.user(db, "cannot_own", _bu(db, tree, "B"))
    with pytest.raises(ValidationFailed) as err:
        contact_service.assign(
            db=db,
            principal=load_principal(db, admin.id),
            kind=contact_service.CONTACT,
            record_id=tree["c1"],
            owner=OwnerRef(type="user", id=roleless.id),
        )
    assert err.value.field == "owner"


def test_bu_reparented_changes_parent_child_reach(db: Session, tree: dict[str, int]) -> None:
    deep_a = f.user(db, "deep_a", _bu(db, tree, "A"), "Marketing Manager")
    assert visible(db, deep_a) == {tree["c1"], tree["c2"]}
    org.update_bu(db=db, bu_id=tree["B"], parent_id=tree["A1"])
    assert visible(db, deep_a) == {tree["c1"], tree["c2"], tree["c3"]}
    org.update_bu(db=db, bu_id=tree["A1"], parent_id=tree["root"])
    assert visible(db, deep_a) == {tree["c1"]}


def test_bu_cannot_be_moved_under_its_own_subtree(db: Session, tree: dict[str, int]) -> None:
    with pytest.raises(ValidationFailed) as err:
        org.update_bu(db=db, bu_id=tree["A"], parent_id=tree["A1"])
    assert err.value.field == "parent_id"


def test_bu_cannot_be_deleted_while_it_has_users_or_records(
    db: Session, tree: dict[str, int]
) -> None:
    with pytest.raises(Conflict, match="child business units"):
        org.delete_bu(db=db, bu_id=tree["A"])
    with pytest.raises(Conflict, match="users"):
        org.delete_bu(db=db, bu_id=tree["B"])
    empty = f.bu(db, "Empty")
    stray_owner = f.user(db, "stray", None, "Marketing Assistant")
    f.contact(db, stray_owner, bu_id=empty.id)
    with pytest.raises(Conflict, match="contact records"):
        org.delete_bu(db=db, bu_id=empty.id)
    really_empty = f.bu(db, "Really empty")
    org.delete_bu(db=db, bu_id=really_empty.id)
    with pytest.raises(Conflict):
        org.delete_bu(db=db, bu_id=tree["root"])


def test_access_is_the_union_of_roles(db: Session, tree: dict[str, int]) -> None:
    a_reader = f.role(db, "A-ish reader", Level.BUSINESS_UNIT)
    u = f.user(db, "union", _bu(db, tree, "A"), a_reader)
    f.team(db, "B union", _bu(db, tree, "B"), u, roles=(a_reader,))
    assert visible(db, u) == {tree["c1"], tree["c3"]}


def test_explain_names_role_level_and_path(db: Session, tree: dict[str, int]) -> None:
    u = f.user(db, "explained", _bu(db, tree, "A"), "Marketer")
    p = load_principal(db, u.id)
    yes = explain(db, p, READ, "contact", _contact(db, tree["c1"]))
    assert yes.allowed
    granting = [x for x in yes.paths if x.granted]
    assert granting
    assert granting[0].role == "Marketer"
    assert granting[0].level == "business_unit"
    no = explain(db, p, READ, "contact", _contact(db, tree["c3"]))
    assert not no.allowed
    assert any(x.path == "business_unit" and "is not that BU" in x.detail for x in no.paths)
    # The anchor BU is named, not only numbered.
    assert any("business_unit at BU 'A' (id" in x.detail for x in no.paths), no.paths


def test_create_respects_the_create_depth(db: Session, tree: dict[str, int]) -> None:
    marketer = f.user(db, "creator", _bu(db, tree, "A"), "Marketer")
    p = load_principal(db, marketer.id)
    can_create_in(db, p, "contact", owner_type="user", owner_id=marketer.id, owning_bu_id=tree["A"])
    with pytest.raises(Forbidden):
        can_create_in(db, p, "contact", owner_type="user", owner_id=999, owning_bu_id=tree["B"])
    manager = f.user(db, "creator_deep", _bu(db, tree, "A"), "Marketing Manager")
    can_create_in(
        db,
        load_principal(db, manager.id),
        "contact",
        owner_type="user",
        owner_id=1,
        owning_bu_id=tree["A1"],
    )
    basic = f.user(db, "creator_basic", _bu(db, tree, "A"), "Marketing Assistant")
    pb = load_principal(db, basic.id)
    can_create_in(db, pb, "contact", owner_type="user", owner_id=basic.id, owning_bu_id=tree["A"])
    with pytest.raises(Forbidden):
        can_create_in(
            db, pb, "contact", owner_type="user", owner_id=marketer.id, owning_bu_id=tree["A"]
        )


def test_organization_owned_types_need_the_organization_level(
    db: Session, tree: dict[str, int]
) -> None:
    marketer = f.user(db, "plain", _bu(db, tree, "A"), "Marketer")
    p = load_principal(db, marketer.id)
    assert can(db, p, READ, "business_unit")
    assert not can(db, p, Privilege.CREATE, "business_unit")


def _share(kind: str, principal_id: int | None, *rights: str):  # type: ignore[no-untyped-def]
    from gatherly.contact.schemas import ShareIn

    return ShareIn(principal_type=kind, principal_id=principal_id, rights=list(rights))  # type: ignore[arg-type]


def _contact(db: Session, contact_id: int):  # type: ignore[no-untyped-def]
    from gatherly.contact.models import Contact

    record = db.get(Contact, contact_id)
    assert record is not None
    db.refresh(record)
    return record
