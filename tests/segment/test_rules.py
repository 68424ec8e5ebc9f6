"""One test per rule of SPEC B4, B5 and B13 (reference bu-security §3.1–3.4, §7)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gatherly.core.audit import AuditEntry
from gatherly.core.changes import DataChange
from gatherly.core.exceptions import Forbidden, NotFound, ValidationFailed
from gatherly.org import service as org
from gatherly.segment import service as seg
from gatherly.segment.models import Segment
from tests.segment.conftest import Org

# ---------------------------------------------------------------- B4: the feature switch


def test_b4_scoping_is_off_by_default(acme: Org) -> None:
    assert not seg.scoping_on(db=acme.db)


def test_b4_switch_changes_are_audited_with_actor_and_previous_value(acme: Org) -> None:
    admin = acme.users["uOrg"]
    org.set_feature(db=acme.db, name=org.BU_SCOPING, enabled=True, by_user_id=admin.id)
    org.set_feature(db=acme.db, name=org.BU_SCOPING, enabled=True, by_user_id=admin.id)  # no-op
    entries = list(
        acme.db.execute(
            select(AuditEntry).where(AuditEntry.action == "feature.set").order_by(AuditEntry.id)
        ).scalars()
    )
    assert [(e.action, e.target_id, e.actor_id, e.actor_name) for e in entries] == [
        ("feature.set", org.BU_SCOPING, admin.id, admin.username)
    ]
    assert (entries[0].before, entries[0].after) == ({"enabled": False}, {"enabled": True})


def test_b4_unknown_feature_is_refused_naming_the_field(acme: Org) -> None:
    with pytest.raises(ValidationFailed) as err:
        org.set_feature(db=acme.db, name="warp_drive", enabled=True, by_user_id=None)
    assert err.value.field == "name"


def test_b4_flipping_scoping_loses_no_data_and_recomputes_every_segment(acme: Org) -> None:
    seg_id = acme.segment("uA")  # business-unit scope by default, made while scoping is off
    acme.drain()
    assert acme.visible("uOrg", seg_id) == acme.ids("c1", "c2", "c3")
    acme.scoping(True)
    assert acme.db.execute(select(DataChange.topic)).scalars().all() == ["all"]
    acme.drain()
    assert acme.visible("uOrg", seg_id) == acme.ids("c1")
    acme.scoping(False)
    acme.drain()
    assert acme.visible("uOrg", seg_id) == acme.ids("c1", "c2", "c3")
    segment = acme.db.get(Segment, seg_id)
    assert segment is not None
    assert segment.scope == "business_unit"  # the stored scope survived both flips
    assert segment.criteria == {"contact": {"country": "JP"}}


# ---------------------------------------------------------------- B5: scope and viewers


def test_b5_bu_scoped_segment_holds_only_the_owner_bu_whatever_the_criteria_match(
    acme: Org,
) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uA", scope="business_unit")  # criteria match c1, c2, c3
    acme.drain()
    assert acme.visible("uOrg", seg_id) == acme.ids("c1")  # uOrg reads all, sees count 1
    stored = acme.db.get(Segment, seg_id)
    assert stored is not None
    assert stored.member_total == 1


def test_b5_bu_scope_excludes_child_bus_of_the_owner_bu(acme: Org) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uA_deep")  # a parent-child manager in A: still only A
    acme.drain()
    assert acme.visible("uA_deep", seg_id) == acme.ids("c1")


def test_b5_bu_level_viewer_of_org_scoped_segment_sees_their_bu_members_and_that_count(
    acme: Org,
) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uOrg", scope="organization")
    acme.share_with_everyone(seg_id)
    acme.drain()
    assert acme.visible("uA", seg_id) == acme.ids("c1")
    assert acme.visible("uA_deep", seg_id) == acme.ids("c1", "c2")
    assert acme.visible("uOrg", seg_id) == acme.ids("c1", "c2", "c3")
    counts = seg.segment_counts(
        db=acme.db, principal=acme.p("uA"), segment=acme.db.get(Segment, seg_id)
    )
    assert counts == seg.SegmentCounts(visible=1, total=None, source="materialised")


def test_b5_total_beside_visible_only_when_the_admin_setting_allows(acme: Org) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uOrg", scope="organization")
    acme.share_with_everyone(seg_id)
    acme.drain()
    assert seg.members(db=acme.db, principal=acme.p("uA"), segment_id=seg_id).total is None
    org.set_feature(db=acme.db, name=org.SEGMENT_TOTALS, enabled=True, by_user_id=None)
    shown = seg.members(db=acme.db, principal=acme.p("uA"), segment_id=seg_id)
    assert (shown.visible, shown.total) == (1, 3)


def test_b5_standard_marketer_cannot_set_organization_scope(acme: Org) -> None:
    acme.scoping(True)
    with pytest.raises(Forbidden) as err:
        acme.segment("uA", scope="organization")
    assert err.value.field == "scope"
    seg_id = acme.segment("uA")
    with pytest.raises(Forbidden):
        seg.update_segment(
            db=acme.db, principal=acme.p("uA"), segment_id=seg_id, scope="organization"
        )


def test_b5_parent_child_manager_cannot_set_organization_scope(acme: Org) -> None:
    with pytest.raises(Forbidden):
        acme.segment("uA_deep", scope="organization")


def test_b5_organization_level_create_and_write_may_set_organization_scope(acme: Org) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uOrg", scope="organization")
    segment = acme.db.get(Segment, seg_id)
    assert segment is not None
    assert segment.scope == "organization"


def test_b5_default_scope_is_business_unit(acme: Org) -> None:
    seg_id = acme.segment("uOrg")
    segment = acme.db.get(Segment, seg_id)
    assert segment is not None
    assert segment.scope == "business_unit"


def test_b5_with_scoping_off_every_segment_is_organization_scoped(acme: Org) -> None:
    seg_id = acme.segment("uA", scope="business_unit")
    acme.drain()
    assert acme.visible("uOrg", seg_id) == acme.ids("c1", "c2", "c3")
    assert acme.visible("uA", seg_id) == acme.ids("c1")  # still only what uA may read


def test_b5_live_evaluation_equals_materialised_membership(acme: Org) -> None:
    acme.scoping(True)
    seg_id = acme.segment("uA")
    before = seg.members(db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id)
    assert before.source == "live"  # never refreshed yet: evaluated on demand
    acme.drain()
    after = seg.members(db=acme.db, principal=acme.p("uOrg"), segment_id=seg_id)
    assert after.source == "materialised"
    assert {c.id for c in before.page.items} == {c.id for c in after.page.items}


def test_b5_viewer_without_read_on_the_segment_gets_not_found(acme: Org) -> None:
    seg_id = acme.segment("uA")
    with pytest.raises(NotFound, match="not found"):
        seg.members(db=acme.db, principal=acme.p("uB"), segment_id=seg_id)


# ---------------------------------------------------------------- B13: static segments


def test_b13_static_segment_refused_while_scoping_is_on(acme: Org) -> None:
    acme.scoping(True)
    with pytest.raises(ValidationFailed) as err:
        seg.create_segment(db=acme.db, principal=acme.p("uA"), name="S", kind="static")
    assert err.value.field == "kind"
    assert "marketing list" in err.value.message


def test_b13_static_segment_allowed_while_scoping_is_off(acme: Org) -> None:
    s = seg.create_segment(db=acme.db, principal=acme.p("uA"), name="S", kind="static")
    added = seg.add_static_members(
        db=acme.db, principal=acme.p("uA"), segment_id=s.id, contact_ids=[acme.contacts["c1"].id]
    )
    assert added.added == 1
    assert acme.visible("uA", s.id) == acme.ids("c1")


def test_b13_list_inside_dynamic_segment_works_with_scoping_on(acme: Org) -> None:
    acme.scoping(True)
    lst = seg.create_list(db=acme.db, principal=acme.p("uOrg"), name="VIP")
    seg.add_to_list(
        db=acme.db,
        principal=acme.p("uOrg"),
        list_id=lst.id,
        contact_ids=sorted(acme.ids("c1", "c3")),
    )
    seg.update_list(db=acme.db, principal=acme.p("uOrg"), list_id=lst.id, name="VIP")
    acme.db.commit()
    # uA cannot read uOrg's list (it lives in A1): the criteria must name a list they read.
    with pytest.raises(ValidationFailed, match=r"criteria.list: marketing list \d+ not found"):
        acme.segment("uA", {"list": lst.id})
    seg_id = acme.segment("uOrg", {"list": lst.id}, scope="business_unit")  # uOrg is in A1
    acme.drain()
    assert acme.visible("uOrg", seg_id) == set()  # neither c1 (A) nor c3 (B) is in A1
    org_id = acme.segment("uOrg", {"list": lst.id}, scope="organization")
    acme.drain()
    assert acme.visible("uOrg", org_id) == acme.ids("c1", "c3")


def test_b13_static_segment_made_before_scoping_is_kept_but_frozen(acme: Org) -> None:
    s = seg.create_segment(db=acme.db, principal=acme.p("uA"), name="S", kind="static")
    seg.add_static_members(
        db=acme.db, principal=acme.p("uA"), segment_id=s.id, contact_ids=[acme.contacts["c1"].id]
    )
    acme.scoping(True)
    assert acme.visible("uA", s.id) == acme.ids("c1")  # nothing lost
    with pytest.raises(ValidationFailed, match="unavailable while business unit scoping"):
        seg.remove_static_members(
            db=acme.db,
            principal=acme.p("uA"),
            segment_id=s.id,
            contact_ids=[acme.contacts["c1"].id],
        )
