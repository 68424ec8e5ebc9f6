"""Property: for random BU trees, roles, teams, records and shares, the SQL predicate
(``readable``), the per-record verdict (``can``) and an oracle written from the rules in
bu-security §2.6 — not from the engine — select the same records, for every user.

Non-administrators then share, re-share and revoke through the contact service; the oracle
decides from the rules alone whether each action is allowed (nobody grants or withdraws a
right they do not hold, a share includes read, an organisation-wide share needs the share
privilege at organization level) and what the rights become, and the engine must agree."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from gatherly.access.engine import can
from gatherly.access.levels import Level, Privilege
from gatherly.access.models import RecordShare
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact
from gatherly.contact.schemas import ShareIn
from gatherly.core.exceptions import GatherlyError
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from tests.access.helpers import selected
from tests.conftest import examples, reset_database

PRIVILEGES = ("read", "write", "share")
BITS = {"read": 1, "write": 2, "share": 64}
EXAMPLES = examples(int(os.environ.get("GATHERLY_PROPERTY_EXAMPLES", "60")))


@dataclass
class World:
    """The random organisation, in plain Python: what the oracle reasons about."""

    parents: list[int | None]  # BU index -> parent index; 0 is the root
    roles: list[dict[str, int]]  # role index -> {privilege: level}
    users: list[tuple[int, frozenset[int], bool]]  # (bu, role indexes, disabled)
    teams: list[tuple[int, frozenset[int], frozenset[int]]]  # (bu, member users, roles)
    records: list[tuple[str, int, int]]  # (owner kind, owner index, owning bu)
    shares: list[tuple[int, str, int, int]] = field(
        default_factory=list
    )  # (record, kind, who, mask)
    # (actor user, "share" | "reshare" | "revoke", record, recipient kind, recipient, mask);
    # a re-share or revoke picks an existing share (by record and recipient, modulo their
    # number) and acts on it: a re-share gives it ``mask``, a revoke removes it.
    actions: list[tuple[int, str, int, str, int, int]] = field(default_factory=list)


@st.composite
def worlds(draw: st.DrawFn) -> World:
    n_bu = draw(st.integers(1, 7))
    parents: list[int | None] = [None] + [draw(st.integers(0, i - 1)) for i in range(1, n_bu)]
    level = st.integers(0, 4)
    roles = [{p: draw(level) for p in PRIVILEGES} for _ in range(draw(st.integers(1, 4)))]
    bu = st.integers(0, n_bu - 1)
    role_set = st.frozensets(st.integers(0, len(roles) - 1), max_size=2)
    users = [
        (
            draw(bu),
            draw(role_set),
            draw(st.booleans().filter(lambda _: True)) and draw(st.integers(0, 5)) == 0,
        )
        for _ in range(draw(st.integers(1, 5)))
    ]
    teams = [
        (draw(bu), draw(st.frozensets(st.integers(0, len(users) - 1), max_size=3)), draw(role_set))
        for _ in range(draw(st.integers(0, 3)))
    ]
    records = []
    for _ in range(draw(st.integers(0, 14))):
        if teams and draw(st.integers(0, 4)) == 0:
            t = draw(st.integers(0, len(teams) - 1))
            records.append(("team", t, teams[t][0]))
        else:
            u = draw(st.integers(0, len(users) - 1))
            # Mostly the owner's BU; sometimes another (a record left behind by a move).
            home = users[u][0] if draw(st.integers(0, 3)) else draw(bu)
            records.append(("user", u, home))
    shares = []
    recipient_kinds = ["user", "team", "organization"] if teams else ["user", "organization"]
    # Any subset of read, write and share (stored shares may lack read: data of old).
    masks = st.integers(1, 7).map(lambda m: (m & 3) | (64 if m & 4 else 0))
    if records:
        for _ in range(draw(st.integers(0, 6))):
            kind = draw(st.sampled_from(recipient_kinds))
            who = {"user": len(users), "team": len(teams), "organization": 1}[kind]
            shares.append(
                (
                    draw(st.integers(0, len(records) - 1)),
                    kind,
                    draw(st.integers(0, who - 1)),
                    draw(masks),
                )
            )
    actions = []
    # Mostly read, or read and share: what a user who holds little may pass on.
    small_masks = st.sampled_from([1, 1, 65, 65, 3, 67, 2])
    if records:
        for _ in range(draw(st.integers(2, 8))):
            kind = draw(st.sampled_from(recipient_kinds))
            who = {"user": len(users), "team": len(teams), "organization": 1}[kind]
            actions.append(
                (
                    draw(st.integers(0, len(users) - 1)),
                    draw(st.sampled_from(["share", "reshare", "revoke"])),
                    draw(st.integers(0, len(records) - 1)),
                    kind,
                    draw(st.integers(0, who - 1)),
                    draw(small_masks),
                )
            )
    return World(parents, roles, users, teams, records, shares, actions)


def oracle(world: World, user: int, privilege: str, record: int) -> bool:
    """Can user do privilege on record — from the rules alone."""
    u_bu, u_roles, disabled = world.users[user]
    if disabled:
        return False
    grants = [(world.roles[r][privilege], u_bu) for r in u_roles]
    my_teams = [i for i, (_, members, _) in enumerate(world.teams) if user in members]
    for t in my_teams:
        t_bu, _, t_roles = world.teams[t]
        grants += [(world.roles[r][privilege], t_bu) for r in t_roles]
    grants = [(lv, anchor) for lv, anchor in grants if lv > 0]
    if not grants:
        return False
    kind, owner, rec_bu = world.records[record]

    def ancestors(b: int) -> set[int]:
        out: set[int] = set()
        cur: int | None = b
        while cur is not None:
            out.add(cur)
            cur = world.parents[cur]
        return out

    for lv, anchor in grants:
        if lv == 4:
            return True
        if lv == 3 and anchor in ancestors(rec_bu):
            return True
        if lv == 2 and anchor == rec_bu:
            return True
    if kind == "user" and owner == user:
        return True
    if kind == "team" and owner in my_teams:
        return True
    for rec, skind, who, mask in world.shares:
        if rec != record or not mask & BITS[privilege]:
            continue
        if (
            skind == "organization"
            or (skind == "user" and who == user)
            or (skind == "team" and who in my_teams)
        ):
            return True
    return False


def max_level(world: World, user: int, privilege: str) -> int:
    """The broadest level at which the user holds ``privilege`` (0: not at all)."""
    _bu, u_roles, disabled = world.users[user]
    if disabled:
        return 0
    levels = [world.roles[r][privilege] for r in u_roles]
    for _bu, members, t_roles in world.teams:
        if user in members:
            levels += [world.roles[r][privilege] for r in t_roles]
    return max(levels, default=0)


def refused_on_record(world: World, actor: int, record: int) -> str:
    """Why the rules refuse any share or revoke on the record to the actor ("": they don't)."""
    if not oracle(world, actor, "read", record):
        return "NotFound"
    if not oracle(world, actor, "share", record):
        return "Forbidden"
    return ""


def held_mask(world: World, actor: int, record: int) -> int:
    """The rights the actor holds on the record, as a share mask."""
    return sum(BITS[p] for p in PRIVILEGES if oracle(world, actor, p, record))


def apply_actions(
    db: Session, world: World, user_ids: list[int], team_ids: list[int], record_ids: list[int]
) -> None:
    """Run the world's share and revoke actions through the service, each checked against
    what the rules allow, and keep ``world.shares`` equal to what they should leave."""
    for actor, op, rec, kind, who, mask in world.actions:
        if op in ("reshare", "revoke"):
            if not world.shares:
                continue
            # A share picked by its place among all of them: its record is the one acted on.
            index = (rec * 7 + who) % len(world.shares)
            rec, kind, who, smask = world.shares[index]
        # Mostly someone who may share the record, so the rules past that check are tried.
        sharers = [u for u in range(len(world.users)) if oracle(world, u, "share", rec)]
        if sharers and actor % 4:
            actor = sharers[actor % len(sharers)]
        principal = load_principal(db, user_ids[actor])
        refusal = refused_on_record(world, actor, rec)
        held = held_mask(world, actor, rec) if not refusal else 0
        if op == "revoke":
            pid = {"user": user_ids, "team": team_ids}.get(kind, [0])[who]
            share_id = db.execute(
                select(RecordShare.id).where(
                    RecordShare.record_id == record_ids[rec],
                    RecordShare.principal_type == kind,
                    RecordShare.principal_id == pid,
                )
            ).scalar_one()
            if not refusal and kind == "organization" and max_level(world, actor, "share") < 4:
                refusal = "Forbidden"
            if not refusal and smask & ~held:
                refusal = "Forbidden"
            call: Callable[[], object] = functools.partial(
                contact_service.unshare,
                db=db,
                principal=principal,
                kind=contact_service.CONTACT,
                record_id=record_ids[rec],
                share_id=share_id,
            )
        else:
            if not refusal and not mask & BITS["read"]:
                refusal = "ValidationFailed"
            if not refusal and kind == "organization" and max_level(world, actor, "share") < 4:
                refusal = "Forbidden"
            if not refusal and mask & ~held:
                refusal = "Forbidden"
            rights = [p for p in PRIVILEGES if mask & BITS[p]]
            pid_or_none = (
                None if kind == "organization" else (user_ids if kind == "user" else team_ids)[who]
            )
            share_in = ShareIn.model_validate(
                {"principal_type": kind, "principal_id": pid_or_none, "rights": rights}
            )
            call = functools.partial(
                contact_service.share,
                db=db,
                principal=principal,
                kind=contact_service.CONTACT,
                record_id=record_ids[rec],
                share_in=share_in,
            )
        what = f"u{actor} {op} record {rec} {kind} {who} mask {mask}"
        if refusal:
            with pytest.raises(GatherlyError) as raised:
                call()
            assert type(raised.value).__name__ == refusal, f"{what}: {raised.value}"
            db.rollback()
            continue
        call()
        db.commit()
        if op == "revoke":
            del world.shares[index]
            continue
        key = (rec, kind, who if kind != "organization" else 0)
        for i, share in enumerate(world.shares):
            if share[:3] == key:
                world.shares[i] = (*key, (share[3] & ~held) | mask)
                break
        else:
            world.shares.append((*key, mask))
        stored = db.execute(
            select(RecordShare.rights).where(
                RecordShare.record_id == record_ids[rec],
                RecordShare.principal_type == kind,
                RecordShare.principal_id == (0 if pid_or_none is None else pid_or_none),
            )
        ).scalar_one()
        expected = next(s[3] for s in world.shares if s[:3] == key)
        assert stored == expected, f"{what}: rights {stored} != {expected}"


def build(db: Session, world: World) -> tuple[list[int], list[int], list[int]]:
    """Create the world through the real services; returns user ids and record ids."""
    root = org.get_root(db=db)
    bu_ids = [root.id]
    for i, parent in enumerate(world.parents[1:], start=1):
        assert parent is not None
        bu_ids.append(org.create_bu(db=db, name=f"BU{i}", parent_id=bu_ids[parent]).id)
    role_ids = [
        org.create_role(
            db=db, name=f"R{i}", privileges={"contact": {p: Level(lv) for p, lv in privs.items()}}
        ).id
        for i, privs in enumerate(world.roles)
    ]
    user_ids = []
    for i, (b, roles, disabled) in enumerate(world.users):
        u = org.create_user(db=db, username=f"u{i}", business_unit_id=bu_ids[b])
        for r in roles:
            org.assign_role(db=db, role_id=role_ids[r], user_id=u.id)
        if disabled:
            org.update_user(db=db, user_id=u.id, disabled=True)
        user_ids.append(u.id)
    team_ids = []
    for i, (b, members, roles) in enumerate(world.teams):
        t = org.create_team(db=db, name=f"T{i}", business_unit_id=bu_ids[b])
        for m in members:
            org.add_member(db=db, team_id=t.id, user_id=user_ids[m])
        for r in roles:
            org.assign_role(db=db, role_id=role_ids[r], team_id=t.id)
        team_ids.append(t.id)
    record_ids = []
    for kind, owner, b in world.records:
        c = Contact(
            owner_type=kind,
            owner_id=(user_ids if kind == "user" else team_ids)[owner],
            owning_bu_id=bu_ids[b],
        )
        db.add(c)
        db.flush()
        record_ids.append(c.id)
    seen: set[tuple[int, str, int]] = set()
    for rec, kind, who, mask in world.shares:
        pid = {"user": user_ids, "team": team_ids}.get(kind, [0])[who]
        if (rec, kind, pid) in seen:
            continue
        seen.add((rec, kind, pid))
        db.add(
            RecordShare(
                record_type="contact",
                record_id=record_ids[rec],
                principal_type=kind,
                principal_id=pid,
                rights=mask,
            )
        )
    db.flush()
    return user_ids, team_ids, record_ids


def _dedupe_shares(world: World) -> None:
    """Keep the first share per (record, recipient), as the build does."""
    kept: dict[tuple[int, str, int], tuple[int, str, int, int]] = {}
    for share in world.shares:
        if share[1] == "organization":
            share = (share[0], share[1], 0, share[3])
        kept.setdefault(share[:3], share)
    world.shares = list(kept.values())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(world=worlds())
def _check(engine: Engine, world: World) -> None:
    CHECKED.append(len(world.users))
    _dedupe_shares(world)
    reset_database(engine)
    with Session(engine) as db:
        user_ids, team_ids, record_ids = build(db, world)
        db.commit()
        apply_actions(db, world, user_ids, team_ids, record_ids)
        for ui, uid in enumerate(user_ids):
            principal = load_principal(db, uid)
            for privilege in PRIVILEGES:
                found = selected(db, principal, privilege)
                by_can = set()
                expected = set()
                for ri, rid in enumerate(record_ids):
                    record = db.get(Contact, rid)
                    assert record is not None
                    if can(db, principal, Privilege(privilege), "contact", record):
                        by_can.add(rid)
                    if oracle(world, ui, privilege, ri):
                        expected.add(rid)
                assert found == expected, f"readable != oracle for u{ui} {privilege}"
                assert by_can == expected, f"can != oracle for u{ui} {privilege}"


CHECKED: list[int] = []  # the users of each organisation checked, for the long run's figures


def test_readable_equals_can_equals_oracle(engine: Engine) -> None:
    CHECKED.clear()
    _check(engine)
    # With -s, the long run (make test-authz-long) says how much it checked.
    print(f"\n{len(CHECKED)} organisations, {sum(CHECKED)} users checked against the oracle")
    assert len(CHECKED) >= min(EXAMPLES, 20)
