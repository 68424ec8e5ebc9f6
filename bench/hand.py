"""Hand-written SQL for the access benchmark: the floor the engine is measured against.

Written from the rules in docs/access.md, specialised for the viewer's level, as an engineer
who knows the schema and the database would write them. The viewer's facts (id, BU, team
ids) come from the database once, like ``load_principal``; integer lists are inlined.

An engineer tries a few forms and keeps the fastest; so does the benchmark. The forms:

- ``in``      one WHERE with OR; shares and the BU subtree as ``IN (subquery)``
              (the shape ``readable()`` generates today)
- ``exists``  shares as a correlated ``EXISTS``, the BU subtree as ``IN (subquery)``
- ``any``     PostgreSQL only: shares and the BU subtree as ``= ANY(ARRAY(subquery))``, so
              every OR branch is an index condition and the planner can build a BitmapOr
- ``union``   the readable ids as a UNION of one indexed SELECT per path
- ``split``   count only, BU and parent-child levels: the records of the BU (subtree),
              counted on the owning-BU index alone, plus the records outside it that
              another path grants (the two sets are disjoint)
- ``plain``   organization level: no predicate at all
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datagen import Viewer
from sqlalchemy import text
from sqlalchemy.orm import Session

VARIANTS = ("in", "exists", "any", "union")


@dataclass(frozen=True)
class Facts:
    """What the hand-written SQL needs to know about the viewer."""

    uid: int
    bu: int
    teams: tuple[int, ...]
    level: str


@dataclass(frozen=True)
class Queries:
    """The three questions as SQL text; ``params`` binds :uid and :bu (and :id for GET)."""

    count: str | None
    page: str | None
    get: str | None
    params: dict[str, Any]


def facts(db: Session, viewer: Viewer) -> Facts:
    """The viewer's BU and teams, read from the database."""
    bu = db.execute(
        text("SELECT business_unit_id FROM user_account WHERE id = :u"), {"u": viewer.user}
    ).scalar_one()
    teams = db.execute(
        text("SELECT team_id FROM team_member WHERE user_id = :u ORDER BY team_id"),
        {"u": viewer.user},
    ).scalars()
    return Facts(uid=viewer.user, bu=bu, teams=tuple(teams), level=viewer.level)


def variants(backend: str) -> tuple[str, ...]:
    """The forms that exist on ``backend``."""
    return tuple(v for v in VARIANTS if v != "any" or backend == "postgresql")


def _share_filter(f: Facts, record_type: str = "contact") -> str:
    teams = ", ".join(map(str, f.teams))
    recipients = [
        "(s.principal_type = 'user' AND s.principal_id = :uid)",
        "(s.principal_type = 'organization' AND s.principal_id = 0)",
    ]
    if f.teams:
        recipients.insert(1, f"(s.principal_type = 'team' AND s.principal_id IN ({teams}))")
    return (
        f"s.record_type = '{record_type}' AND (s.rights & 1) <> 0\n"
        "      AND (" + "\n        OR ".join(recipients) + ")"
    )


def _shared_ids(f: Facts, record_type: str = "contact") -> str:
    return f"SELECT s.record_id FROM record_share s\n    WHERE {_share_filter(f, record_type)}"


def _subtree() -> str:
    return "SELECT descendant_id FROM business_unit_closure WHERE ancestor_id = :bu"


def _terms(f: Facts, variant: str, alias: str = "c", record_type: str = "contact") -> list[str]:
    """The OR terms of the viewer's read access to ``record_type`` rows named ``alias``."""
    c = alias
    teams = ", ".join(map(str, f.teams))
    terms = [f"({c}.owner_type = 'user' AND {c}.owner_id = :uid)"]
    if f.teams:
        terms.append(f"({c}.owner_type = 'team' AND {c}.owner_id IN ({teams}))")
    if f.level == "business_unit":
        terms.append(f"{c}.owning_bu_id = :bu")
    elif f.level == "parent_child":
        if variant == "any":
            terms.append(f"{c}.owning_bu_id = ANY(ARRAY({_subtree()}))")
        else:
            terms.append(f"{c}.owning_bu_id IN ({_subtree()})")
    if variant == "exists":
        terms.append(
            f"EXISTS (SELECT 1 FROM record_share s WHERE s.record_id = {c}.id\n"
            f"      AND {_share_filter(f, record_type)})"
        )
    elif variant == "any":
        terms.append(f"{c}.id = ANY(ARRAY({_shared_ids(f, record_type)}))")
    else:
        terms.append(f"{c}.id IN ({_shared_ids(f, record_type)})")
    return terms


def _union(f: Facts) -> str:
    teams = ", ".join(map(str, f.teams))
    parts = ["SELECT id FROM contact WHERE owner_type = 'user' AND owner_id = :uid"]
    if f.teams:
        parts.append(f"SELECT id FROM contact WHERE owner_type = 'team' AND owner_id IN ({teams})")
    if f.level == "business_unit":
        parts.append("SELECT id FROM contact WHERE owning_bu_id = :bu")
    elif f.level == "parent_child":
        parts.append(f"SELECT id FROM contact WHERE owning_bu_id IN ({_subtree()})")
    parts.append(
        "SELECT c.id FROM record_share s JOIN contact c ON c.id = s.record_id\n"
        f"    WHERE {_share_filter(f)}"
    )
    return "\n  UNION ".join(parts)


def _split(f: Facts, variant: str, params: dict[str, Any]) -> Queries:
    if f.level == "business_unit":
        inside, outside = "c.owning_bu_id = :bu", "c.owning_bu_id <> :bu"
    else:
        inside = f"c.owning_bu_id IN ({_subtree()})"
        outside = f"c.owning_bu_id NOT IN ({_subtree()})"
    others = [t for t in _terms(f, variant) if "owning_bu_id" not in t]
    rest = "\n     OR ".join(others)
    count = (
        f"SELECT (SELECT count(*) FROM contact c WHERE {inside})\n"
        f"     + (SELECT count(*) FROM contact c WHERE {outside} AND (\n     {rest}))"
    )
    return Queries(count=count, page=None, get=None, params=params)


# One row over the page, as the API fetches it, to know whether there is a next page.
ORDER = "ORDER BY c.modified_at DESC, c.id DESC LIMIT 51"


def queries(backend: str, f: Facts) -> dict[str, Queries]:
    """Every form of the count, first page and GET for this viewer, by variant name."""
    params = {"uid": f.uid, "bu": f.bu}
    if f.level == "organization":
        plain = Queries(
            count="SELECT count(*) FROM contact c",
            page=f"SELECT c.* FROM contact c {ORDER}",
            get="SELECT c.* FROM contact c WHERE c.id = :id",
            params=params,
        )
        return {"plain": plain}
    out = {}
    for v in variants(backend):
        if v == "union":
            ids = _union(f)
            out[v] = Queries(
                count=f"SELECT count(*) FROM (\n  {ids}\n) r",
                page=f"SELECT c.* FROM contact c WHERE c.id IN (\n  {ids}\n) {ORDER}",
                get=f"SELECT c.* FROM contact c WHERE c.id = :id AND c.id IN (\n  {ids}\n)",
                params=params,
            )
            continue
        pred = "\n   OR ".join(_terms(f, v))
        out[v] = Queries(
            count=f"SELECT count(*) FROM contact c WHERE\n   {pred}",
            page=f"SELECT c.* FROM contact c WHERE\n   {pred}\n{ORDER}",
            get=f"SELECT c.* FROM contact c WHERE c.id = :id AND (\n   {pred})",
            params=params,
        )
    if f.level in ("business_unit", "parent_child"):
        out["split"] = _split(f, "any" if backend == "postgresql" else "in", params)
    return out
