"""The object-level authorization matrix (issue 20, S2).

Every API route that takes an id (in the path, the query or the body) — walked from the
app's own route table with the real objects of ``tests.api.test_routes.targets`` (owned by
the administrator in the root BU and by the marketer in Sales) — is requested by one
viewer per access tier, each placed in the Support BU so that those objects are records of
*another* BU:

- the tiers below organization (no role, user, business unit, parent-child) get no 2xx,
  except on the explicit allow-list below (each entry says why the model lets anyone
  reach it);
- the organization tiers get 2xx exactly where their role grants the privilege the route
  needs on its record type — a read-only organization role is refused every change;
- a refused answer looks the same (status and error code) as the answer for an id that
  does not exist (404 not_found is that answer), so it does not tell that the record exists;
- no answer is a 5xx, and the refused requests change nothing in the database.

The second test checks the numbers: every count, total, export and tile a viewer gets from
a container they may read (a list, segment, report, dashboard, scoring model, event,
LinkedIn profile, their own duplicate job) is what the access engine says that viewer may
read. The last tests pin two leaks the walk found (expected failures until fixed).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, true
from sqlalchemy.orm import Session, sessionmaker

from gatherly.access import engine as access
from gatherly.access import registry
from gatherly.access.engine import Principal
from gatherly.access.levels import Level, Privilege
from gatherly.capture import duplicates
from gatherly.contact.models import Contact, Lead
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Forbidden
from gatherly.event.models import EventRecording, EventRegistration, EventSession, MarketingEvent
from gatherly.journey import service as journey_service
from gatherly.linkedin.models import LinkedInLead
from gatherly.org import service as org_service
from gatherly.org.models import User
from gatherly.report import service as report_service
from gatherly.scoring.models import LeadScore
from gatherly.segment import service as segment_service
from gatherly.segment.models import MarketingList, MarketingListMember, Segment, SegmentMember
from gatherly.teams.models import SyncRun, TeamsOrganizer, TeamsWebinar
from tests import factories as f
from tests.api import test_routes as walk
from tests.api.conftest import Org
from tests.api.helpers import API, Headers
from tests.api.test_routes import _request, _snapshot, api_routes

# The route walk's fixtures, used as they are: a real object for every path parameter.
sink = walk.sink
targets = walk.targets

# The engine's SQL runs on both databases in the access, property and API suites; this walk
# checks the routes' verdicts, which do not differ by database.
pytestmark = pytest.mark.sqlite_only

READER = "Organization reader"


@dataclass(frozen=True)
class Tier:
    """One access tier: the roles its viewer holds (built-in names, or READER)."""

    name: str
    roles: tuple[str, ...]
    organization: bool = False  # its grants reach every BU, so 2xx is expected where held


# One viewer per tier, each in the Support BU: the targets (root, Sales) are outside the
# reach of every tier below organization. The built-in roles give their level on every
# marketing record type (docs/access.md, "Built-in roles"); the reader is a custom role with
# read alone, at organization level, on every record type, so read and write differ.
TIERS = (
    Tier("none", ()),
    Tier("user", ("Marketing Assistant",)),
    Tier("business_unit", ("Marketer",)),
    Tier("parent_child", ("Marketing Manager",)),
    Tier("organization", ("Marketing Administrator",), organization=True),
    Tier("organization_read", (READER,), organization=True),
)
LOWER = tuple(t for t in TIERS if not t.organization)
ROLE_HOLDERS = frozenset(t.name for t in LOWER if t.roles)

# Routes below organization level that may answer 2xx, and why the model allows it.
ALLOWED: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    **{
        ("GET", path): (
            ROLE_HOLDERS,
            "the directory is organization-owned: every built-in role reads BUs, users, "
            "teams and roles at organization level (to pick owners, read the org chart)",
        )
        for path in (
            "/business-units/{bu_id}",
            "/users/{user_id}",
            "/users/{user_id}/roles",
            "/teams/{team_id}",
            "/teams/{team_id}/members",
            "/teams/{team_id}/roles",
            "/roles/{role_id}",
        )
    },
    ("GET", "/duplicates/rules/{rule_id}"): (
        ROLE_HOLDERS,
        "duplicate rules are organization-owned and read by everyone (a form picks one)",
    ),
    **{
        ("GET", path): (
            frozenset(t.name for t in LOWER),
            "a built-in report is not a record: each run counts only what the viewer may "
            "read, nothing for a user without roles (the numbers are checked below)",
        )
        for path in ("/reports/builtin/{key}/run", "/reports/builtin/{key}/run.csv")
    },
    ("POST", "/reports/builtin/{key}/copy"): (
        ROLE_HOLDERS,
        "copies a built-in report into a new report owned by the caller: their own record",
    ),
}

# Routes without a path parameter that name objects by id in the query, or in the body
# (``_request`` fills both from the targets: administrator's twins to merge, their ready
# message to send to the marketer's list).
OTHER_IDS = {
    ("GET", "/access/explain"),
    ("GET", "/email/audience"),
    ("GET", "/email/audience/people"),
    ("GET", "/email/insights"),
    ("GET", "/email/insights/people"),
    ("GET", "/email/insights/people.csv"),
    ("POST", "/duplicates/merge"),
    ("POST", "/email/sends"),
}

ADMIN = "system administrator"  # the route needs the System Administrator role
OWN = "own"  # the route knows only the caller's own objects
BUILTIN = "builtin report"
# The record type each route acts on, by path prefix (the first that matches).
RECORD_TYPES: tuple[tuple[str, str], ...] = (
    ("/admin/", ADMIN),
    ("/email/suppressions/", ADMIN),
    ("/me/tokens/", OWN),
    ("/duplicates/jobs/", OWN),
    ("/duplicates/merge", "contact"),
    ("/access/explain", "contact"),
    ("/business-units/", "business_unit"),
    ("/users/", "user"),
    ("/teams/", "team"),
    ("/roles/", "security_role"),
    ("/contacts/", "contact"),
    ("/leads/", "lead"),
    ("/dashboards/", "dashboard"),
    ("/duplicates/rules/", "duplicate_rule"),
    ("/email/content-settings/", "email_content_setting"),
    ("/email/messages/", "email_message"),
    ("/email/sends", "email_send"),
    ("/email/insights", "email_send"),
    ("/email/audience", "marketing_list"),
    ("/events/", "marketing_event"),
    ("/forms/submissions/", "form_submission"),
    ("/forms/", "marketing_form"),
    ("/pages/", "marketing_page"),
    ("/integrations/teams/", "teams_integration"),
    ("/journeys/", "journey"),
    ("/linkedin/leads/", "linkedin_lead"),
    ("/linkedin/profiles/", "linkedin_profile"),
    ("/linkedin/assignment-rules/", "linkedin_assignment_rule"),
    ("/lists/", "marketing_list"),
    ("/segments/", "segment"),
    ("/reports/builtin/", BUILTIN),
    ("/reports/", "report"),
    ("/scoring/models/", "scoring_model"),
    ("/scoring/scores/", "lead_score"),
)
# The privilege a route other than GET needs, by the last part of its path (write
# otherwise). A simulation writes and sends nothing; a refresh recomputes what the segment
# already means from its owner's criteria and access (segment/_refresh.py: Read).
CHANGES = {
    "shares": Privilege.SHARE,
    "assign": Privilege.ASSIGN,
    "owner": Privilege.ASSIGN,
    "sends": Privilege.CREATE,
    "simulate": Privilege.READ,
    "refresh": Privilege.READ,
}
# Routes the organization tiers pass the access check of but that need a connected Teams
# tenant to answer 2xx (tests/api/test_teams_api.py and test_events_api.py cover them).
NEEDS_TENANT = {
    ("GET", "/events/{event_id}/recordings/{recording_id}/content"),
    ("POST", "/integrations/teams/organizers/{organizer_id}/check"),
}
MISSING = 987_654  # an id no record has
NOT_FOUND = (404, "not_found")


@dataclass
class Viewer:
    """A tier's user, their token and their principal."""

    tier: Tier
    user: User
    headers: Headers
    principal: Principal


def make_viewers(db: Session, org: Org) -> dict[str, Viewer]:
    """One user per tier in the Support BU (committed), with a token each."""
    privileges = {t.name: {Privilege.READ.value: Level.ORGANIZATION} for t in registry.all_types()}
    reader = org_service.create_role(db=db, name=READER, privileges=privileges).id
    users = {}
    for tier in TIERS:
        roles = [reader if r == READER else r for r in tier.roles]
        users[tier.name] = f.user(db, f"tier_{tier.name}", org.support, *roles)
    db.commit()
    return {
        name: Viewer(
            next(t for t in TIERS if t.name == name), u, f.token(db, u), f.principal(db, u)
        )
        for name, u in users.items()
    }


def record_type(template: str) -> str:
    """What the route acts on (a registered record type, ADMIN, OWN or BUILTIN)."""
    path = template.removeprefix(API)
    for prefix, kind in RECORD_TYPES:
        if path.startswith(prefix):
            return kind
    raise AssertionError(f"no record type known for {template}: add it to RECORD_TYPES")


def privilege(method: str, template: str) -> Privilege:
    """The privilege the route needs on its record type."""
    if method == "GET":
        return Privilege.READ
    if method == "DELETE":
        return Privilege.DELETE
    return CHANGES.get(template.rsplit("/", 1)[-1], Privilege.WRITE)


def expected_2xx(viewer: Viewer, method: str, template: str) -> bool:
    """Whether an organization-tier viewer's role grants what the route needs."""
    kind = record_type(template)
    if kind in (ADMIN, OWN):
        return False
    if kind == BUILTIN:
        need = Privilege.READ if method == "GET" else Privilege.CREATE
        return viewer.principal.max_level("report", need) > Level.NONE
    return viewer.principal.max_level(kind, privilege(method, template)) == Level.ORGANIZATION


def id_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) that names an object by id, in the path or the query."""
    routes = api_routes(client.app)  # type: ignore[arg-type]
    found = [(m, p) for m, p in routes if "{" in p or (m, p.removeprefix(API)) in OTHER_IDS]
    assert {(m, p.removeprefix(API)) for m, p in found} >= OTHER_IDS
    return found


def add_connector_targets(db: Session, targets: dict[str, Any]) -> None:
    """A real event, Teams organizer, webinar and sync run of the administrator's, so the
    event and connector routes name objects that exist."""
    admin = targets["org"].users["admin"]
    event = f.event(db, admin, "Walk webinar")
    session = EventSession(event_id=event.id, external_id="walk-session")
    db.add(session)
    db.flush()
    recording = EventRecording(
        event_id=event.id, session_id=session.id, external_id="walk", meeting_id="walk"
    )
    organizer = TeamsOrganizer(graph_user_id="walk-organizer", user_id=admin.id)
    db.add(organizer)
    db.flush()
    webinar = TeamsWebinar(graph_id="walk-webinar", organizer_id=organizer.id, event_id=event.id)
    run = SyncRun(kind="full", triggered_by_id=admin.id)
    db.add_all([recording, webinar, run])
    db.commit()
    targets["ids"].update(
        event_id=event.id,
        recording_id=recording.id,
        organizer_id=organizer.id,
        webinar_id=webinar.id,
        run_id=run.id,
    )
    targets["bodies"].update(
        {
            "/integrations/teams/organizers/{organizer_id}": {"sync_new_by_default": True},
            "/integrations/teams/webinars/{webinar_id}": {"sync_enabled": True},
        }
    )


def missing(targets: dict[str, Any]) -> dict[str, Any]:
    """The same targets with every numeric id replaced by one no record has."""
    org: Org = targets["org"]
    ids = {k: MISSING if isinstance(v, int) else v for k, v in targets["ids"].items()}
    gone = dataclasses.replace(
        org, contacts=dict.fromkeys(org.contacts, MISSING), leads=dict.fromkeys(org.leads, MISSING)
    )
    shares = dict.fromkeys(targets["shares"], MISSING)
    return {**targets, "ids": ids, "shares": shares, "org": gone}


def answer(response: Any) -> tuple[int, str | None]:
    """Status and error code of an answer."""
    try:
        body = response.json()
    except ValueError:
        return response.status_code, None
    error = body.get("error") if isinstance(body, dict) else None
    return response.status_code, error.get("code") if isinstance(error, dict) else None


def test_no_tier_reaches_another_units_objects_by_id(
    client: TestClient, db: Session, targets: dict[str, Any]
) -> None:
    add_connector_targets(db, targets)
    viewers = make_viewers(db, targets["org"])
    routes = id_routes(client)
    gone = missing(targets)
    failures: list[str] = []
    got_2xx: dict[str, set[tuple[str, str]]] = {name: set() for name in viewers}

    def call(viewer: Viewer, method: str, template: str, where: dict[str, Any]) -> Any:
        try:
            response = _request(client, method, template, where, viewer.headers)
        except Exception as exc:  # a server error raised through the test client
            failures.append(f"{method} {template} as {viewer.tier.name}: raised {exc!r}")
            return None
        if response.status_code >= 500:
            failures.append(
                f"{method} {template} as {viewer.tier.name}: {response.status_code} "
                f"{response.text[:300]}"
            )
        return response

    def check(viewer: Viewer, method: str, template: str) -> None:
        response = call(viewer, method, template, targets)
        if response is None:
            return
        tier = viewer.tier
        path = template.removeprefix(API)
        if response.status_code < 300:
            got_2xx[tier.name].add((method, path))
        if tier.organization:
            want = expected_2xx(viewer, method, template)
            ok = response.status_code < 300
            if want != ok and not (want and (method, path) in NEEDS_TENANT):
                failures.append(
                    f"{method} {template} as {tier.name}: {response.status_code}, expected "
                    f"{'2xx' if want else 'a refusal'}: {response.text[:300]}"
                )
        elif response.status_code < 300:
            allowed = ALLOWED.get((method, path))
            if allowed is None or tier.name not in allowed[0]:
                failures.append(
                    f"{method} {template} as {tier.name}: {response.status_code} "
                    f"{response.text[:300]}"
                )
            return
        if not tier.organization and answer(response) != NOT_FOUND:
            # A refusal other than "not found" must be what an id no object has gets too,
            # or it tells that the object exists.
            other = call(viewer, method, template, gone)
            if other is not None and answer(other) != answer(response):
                failures.append(
                    f"{method} {template} as {tier.name}: {answer(response)} for the object, "
                    f"{answer(other)} for an id that does not exist"
                )

    for viewer in viewers.values():  # a token's first use records it; not a change to check
        assert client.get(f"{API}/me", headers=viewer.headers).status_code == 200
    before = _snapshot(db)
    # Every refusal first (and the reader's reads), with a snapshot around them; then the
    # allow-listed changes; then the organization-wide administrator, who changes things.
    later = []
    for viewer in viewers.values():
        for method, template in routes:
            path = template.removeprefix(API)
            writes_allowed = method != "GET" and (method, path) in ALLOWED
            if viewer.tier.name == "organization" or writes_allowed:
                later.append((viewer, method, template))
                continue
            check(viewer, method, template)
    assert _snapshot(db) == before, "a refused request changed the database"
    order = {"GET": 0, "POST": 1, "PUT": 1, "PATCH": 2, "DELETE": 3}
    for viewer, method, template in sorted(
        later, key=lambda c: (c[0].tier.name, order[c[1]], -len(c[2]), c[2])
    ):
        check(viewer, method, template)
    # The allow-list holds no entry that nothing needs any more.
    used = {(route, name) for name, got in got_2xx.items() for route in got}
    for route, (tiers, _why) in ALLOWED.items():
        for name in tiers:
            if (route, name) not in used:
                failures.append(f"allow-listed {route} answered no 2xx to {name}")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ counts

# Numbers shown in full to whoever may read the record they belong to, by the model: not
# counts of records the viewer reads (the walk above proves that nobody else gets them).
FULL_BY_DESIGN = {
    ("GET", "/email/insights"): "B11: interactions belong to the message or send "
    "(docs/email.md, Insights; the people lists name only readable contacts, "
    "tests/api/test_email_insights.py)",
    ("GET", "/email/sends/{send_id}"): "B11: a send's progress is the send's own",
    ("GET", "/journeys/{journey_id}/progress"): "B11: journey members belong to the journey "
    "(docs/journeys.md, Progress; tests/journey/test_explain.py names only readable people)",
    ("GET", "/forms/{form_id}/stats"): "B11: visits and submissions belong to the form "
    "(docs/forms.md, Interactions; tests/api/test_forms.py)",
    ("GET", "/pages/{page_id}/stats"): "B11: visits belong to the page (docs/forms.md)",
    ("GET", "/events/{event_id}"): "T6: registrant, attendee and cancellation counts are the "
    "event's own properties, as Teams reports them (docs/teams.md, section 5)",
    ("GET", "/events/{event_id}/reconciliation"): "T6: the event's counts; the people listed "
    "are only those the viewer may read (checked below)",
    ("GET", "/scoring/scores/{score_id}/explanation"): "B11: the counts the model counted, the "
    "interactions listed only where readable (docs/scoring.md)",
}

TWIN = "twin@example.com"  # the targets hold two of the administrator's; more are added


@dataclass(frozen=True)
class Count:
    """A number a route answers, and how many records the viewer may read behind it.

    ``expected(db, principal)`` is computed through the access engine; ``container`` is the
    record the route names (a 2xx needs read on it), None for a route that names none.
    """

    label: str
    path: str
    number: Callable[[Any], int | None]
    expected: Callable[[Session, Principal], int | None]
    container: tuple[str, int] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    method: str = "GET"
    at_most: bool = False  # people are counted once per email: the records bound the number


def readable_count(db: Session, principal: Principal, model: Any, *where: Any) -> int:
    """How many rows of ``model`` matching ``where`` the principal may read (the engine)."""
    kind = next(t.name for t in registry.owned_types() if t.model is model)
    return access.count(db, select(model).where(*where), principal=principal, record_type=kind)


def csv_rows(response: Any) -> int:
    """The data rows of a CSV answer."""
    return len(list(csv.reader(io.StringIO(response.text)))) - 1


def column_sum(run: dict[str, Any] | None, measure: str) -> int | None:
    """A report run's total of one measure over its rows (None: no run)."""
    if run is None:
        return None
    at = run["measures"].index(measure)
    return sum(row["values"][at] or 0 for row in run["rows"])


def count_data(db: Session, targets: dict[str, Any], viewers: dict[str, Viewer]) -> dict[str, int]:
    """Containers every tier but ``none`` may read (shared with the organisation), holding
    records of every BU: the tiers then read different parts of each."""
    org: Org = targets["org"]
    ids = targets["ids"]
    admin = f.principal(db, org.users["admin"])
    support = org.users["support_assistant"]
    emea = f.bu(db, "Support EMEA", org.support)
    # Twins of the administrator's two (same email): in Support, Support EMEA and the user
    # tier's own; the built-in duplicate rule pairs them by email.
    for owner, bu_id in ((support, None), (support, emea.id), (viewers["user"].user, None)):
        f.contact(db, owner, bu_id=bu_id, email=TWIN, country="DE")
    everyone = list(db.scalars(select(Contact.id)))
    segment_service.add_to_list(
        db=db, principal=admin, list_id=ids["list_id"], contact_ids=everyone
    )
    segment_service.add_static_members(
        db=db, principal=admin, segment_id=ids["segment_id"], contact_ids=everyone
    )
    # Webinars in the root, Support and Support EMEA, each with a registration of every
    # contact (owned like its event, B10).
    events = [f.event(db, org.users["admin"], "Root webinar"), f.event(db, support, "Support")]
    events.append(f.event(db, support, "EMEA webinar"))
    events[2].owning_bu_id = emea.id
    for event in events:
        for person in db.scalars(select(Contact)):
            f.registration(db, event, person)
    countries = report_service.create_report(
        db=db, principal=admin, name="Countries", definition=COUNTRIES
    )
    board = report_service.create_dashboard(
        db=db,
        principal=admin,
        name="Mixed",
        items=[{"report": countries.id}, {"report": ids["report_id"]}],
    )
    profile = ids["profile_id"]
    db.add(
        LinkedInLead(
            response_id="support-1",
            profile_id=profile,
            submitted_at=utcnow(),
            owner_type="user",
            owner_id=support.id,
            owning_bu_id=support.business_unit_id,
        )
    )
    db.commit()
    shared = {
        "marketing_list": ids["list_id"],
        "segment": ids["segment_id"],
        "report": countries.id,
        "dashboard": board.id,
        "scoring_model": ids["model_id"],
        "marketing_event": events[0].id,
        "linkedin_profile": profile,
    }
    for kind, rid in shared.items():
        f.share_with_organization(db, kind, rid)
    return {
        "countries": countries.id,
        "dashboard": board.id,
        "event": events[0].id,
        "person": org.contacts["support"],
    }


COUNTRIES = {"source": "contacts", "group_by": ["country"], "measures": ["contacts"]}


def counts(targets: dict[str, Any], data: dict[str, int]) -> list[Count]:
    """Every count the walk checks, with what each viewer may read behind it."""
    ids = targets["ids"]
    lst, seg, scorer = ids["list_id"], ids["segment_id"], ids["model_id"]
    event, person, profile = data["event"], data["person"], ids["profile_id"]
    in_list = Contact.id.in_(
        select(MarketingListMember.contact_id).where(MarketingListMember.list_id == lst)
    )
    in_segment = Contact.id.in_(
        select(SegmentMember.contact_id).where(SegmentMember.segment_id == seg)
    )

    def records(model: Any, *where: Any) -> Callable[[Session, Principal], int]:
        return lambda db, p: readable_count(db, p, model, *where)

    def members(where: Any) -> Callable[[Session, Principal], int]:
        return records(Contact, where)

    def pairs(db: Session, p: Principal) -> int:
        return max(readable_count(db, p, Contact, Contact.email == TWIN) - 1, 0)

    def registrations_at_readable_events(*where: Any) -> Callable[[Session, Principal], int]:
        def expected(db: Session, p: Principal) -> int:
            events = access.scope(
                select(MarketingEvent.id), principal=p, record_type="marketing_event"
            )
            at = EventRegistration.event_id.in_(events)
            return readable_count(db, p, EventRegistration, at, *where)

        return expected

    def if_readable(report_id: int, number: Callable[[Session, Principal], int]) -> Any:
        return lambda db, p: number(db, p) if can_read(db, p, "report", report_id) else None

    return [
        *(
            Count(
                f"/{kind}/count",
                f"/{kind}/count",
                lambda r: r.json()["count"],
                records(model),
            )
            for kind, model in (
                ("contacts", Contact),
                ("leads", Lead),
                ("events", MarketingEvent),
                ("lists", MarketingList),
                ("segments", Segment),
                ("linkedin/leads", LinkedInLead),
            )
        ),
        Count(
            "list members",
            f"/lists/{lst}/members",
            lambda r: len(r.json()["items"]),
            members(in_list),
            ("marketing_list", lst),
            {"limit": 100},
        ),
        Count(
            "list members CSV",
            f"/lists/{lst}/members.csv",
            csv_rows,
            members(in_list),
            ("marketing_list", lst),
        ),
        Count(
            "list audience total",
            "/email/audience",
            lambda r: r.json()["total"],
            members(in_list),
            ("marketing_list", lst),
            {"list_id": lst},
        ),
        Count(
            "segment visible members",
            f"/segments/{seg}",
            lambda r: r.json()["visible_members"],
            members(in_segment),
            ("segment", seg),
        ),
        Count(
            "segment total (segment_totals is off)",
            f"/segments/{seg}",
            lambda r: r.json()["total_members"],
            lambda db, p: None,
            ("segment", seg),
        ),
        Count(
            "segment members: visible",
            f"/segments/{seg}/members",
            lambda r: r.json()["visible"],
            members(in_segment),
            ("segment", seg),
        ),
        Count(
            "segment members: rows",
            f"/segments/{seg}/members",
            lambda r: len(r.json()["items"]),
            members(in_segment),
            ("segment", seg),
            {"limit": 100},
        ),
        Count(
            "segment members CSV",
            f"/segments/{seg}/members.csv",
            csv_rows,
            members(in_segment),
            ("segment", seg),
        ),
        Count(
            "segment refresh",
            f"/segments/{seg}/refresh",
            lambda r: r.json()["visible_members"],
            members(in_segment),
            ("segment", seg),
            method="POST",
        ),
        Count(
            "report run",
            f"/reports/{data['countries']}/run",
            lambda r: column_sum(r.json(), "contacts"),
            members(true()),
            ("report", data["countries"]),
        ),
        Count(
            "built-in report: webinars",
            "/reports/builtin/webinar-performance/run",
            lambda r: column_sum(r.json(), "events"),
            records(MarketingEvent, MarketingEvent.event_type == "webinar"),
        ),
        Count(
            "built-in report: registrants",
            "/reports/builtin/webinar-performance/run",
            lambda r: column_sum(r.json(), "registrants"),
            registrations_at_readable_events(EventRegistration.status == "registered"),
            at_most=True,
        ),
        Count(
            "dashboard tile",
            f"/dashboards/{data['dashboard']}",
            lambda r: column_sum(r.json()["panels"][0]["run"], "contacts"),
            members(true()),
            ("dashboard", data["dashboard"]),
        ),
        Count(
            "dashboard tile of a report the viewer may not read",
            f"/dashboards/{data['dashboard']}",
            lambda r: column_sum(r.json()["panels"][1]["run"], "events"),
            if_readable(ids["report_id"], records(MarketingEvent)),
            ("dashboard", data["dashboard"]),
        ),
        Count(
            "scores of a model",
            "/scoring/scores",
            lambda r: len(r.json()["items"]),
            records(LeadScore, LeadScore.model_id == scorer),
            ("scoring_model", scorer),
            {"model_id": scorer, "limit": 100},
        ),
        Count(
            "scores CSV",
            f"/scoring/models/{scorer}/scores.csv",
            csv_rows,
            records(LeadScore, LeadScore.model_id == scorer),
            ("scoring_model", scorer),
        ),
        Count(
            "event registrations",
            f"/events/{event}/registrations",
            lambda r: len(r.json()["items"]),
            registrations_at_readable_events(EventRegistration.event_id == event),
            ("marketing_event", event),
            {"limit": 100},
        ),
        Count(
            "event reconciliation: registrants named",
            f"/events/{event}/reconciliation",
            lambda r: len(r.json()["registrants"]),
            registrations_at_readable_events(EventRegistration.event_id == event),
            ("marketing_event", event),
            at_most=True,
        ),
        Count(
            "a contact's timeline",
            f"/contacts/{person}/timeline",
            len_json,
            registrations_at_readable_events(EventRegistration.contact_id == person),
            ("contact", person),
        ),
        Count(
            "LinkedIn leads of a profile",
            "/linkedin/leads/count",
            lambda r: r.json()["count"],
            records(LinkedInLead, LinkedInLead.profile_id == profile),
            ("linkedin_profile", profile),
            {"profile_id": profile},
        ),
        Count(
            "duplicate pairs of the viewer's own job",
            "/duplicates/jobs/{job}/pairs/count",
            lambda r: r.json()["count"],
            pairs,
        ),
    ]


def len_json(response: Any) -> int:
    """The length of a JSON list answer."""
    return len(response.json())


def can_read(db: Session, principal: Principal, record_type: str, record_id: int) -> bool:
    """Whether the engine lets the principal read the record."""
    found = access.get(db, principal=principal, record_type=record_type, record_id=record_id)
    return found is not None


def own_jobs(
    db: Session, sessions: sessionmaker[Session], viewers: dict[str, Viewer]
) -> dict[str, int]:
    """A finished duplicate detection job of each viewer who may run one."""
    jobs = {}
    for name, viewer in viewers.items():
        try:
            job = duplicates.start_job(
                db=db, principal=viewer.principal, record_type="contact", queue=None
            )
        except Forbidden:
            continue
        db.commit()
        duplicates.run_job(sessions, job.id)
        jobs[name] = job.id
    return jobs


def test_no_count_tells_more_than_the_viewer_may_read(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    targets: dict[str, Any],
) -> None:
    routes = set(api_routes(client.app))  # type: ignore[arg-type]
    assert {(m, API + p) for m, p in FULL_BY_DESIGN} <= routes
    viewers = make_viewers(db, targets["org"])
    data = count_data(db, targets, viewers)
    jobs = own_jobs(db, session_factory, viewers)
    failures: list[str] = []
    for check in counts(targets, data):
        for name, viewer in viewers.items():
            path = check.path.format(job=jobs.get(name, MISSING))
            where = f"{check.label} ({check.method} {path}) as {name}"
            response = client.request(
                check.method, API + path, params=check.params, headers=viewer.headers
            )
            want = check.expected(db, viewer.principal)
            may_read = check.container is None or can_read(db, viewer.principal, *check.container)
            if response.status_code >= 300:
                # Refused: right where the viewer may not read what the route names.
                if response.status_code >= 500 or (may_read and want):
                    failures.append(f"{where}: {response.status_code} {response.text[:200]}")
                continue
            if not may_read:
                failures.append(f"{where}: answered for a record the viewer may not read")
                continue
            got = check.number(response)
            if got != want and not (check.at_most and got is not None and want and got <= want):
                failures.append(f"{where}: {got}, but the viewer may read {want}")
    assert not failures, "\n".join(failures)


# ------------------------------------------------------------------ leaks the walk found (fixed)


def test_a_readable_model_tells_no_number_of_scores_the_viewer_may_not_read(
    client: TestClient, db: Session, org: Org
) -> None:
    model = walk.scoring_targets(db, f.principal(db, org.users["admin"]))["model_id"]
    viewer = f.user(db, "support_marketer", org.support, "Marketer")
    db.commit()
    f.share_with_organization(db, "scoring_model", model)  # the model, not its scores
    headers = f.token(db, viewer)
    scores = readable_count(db, f.principal(db, viewer), LeadScore, LeadScore.model_id == model)
    assert scores == 0
    for url in (f"{API}/scoring/models/{model}", f"{API}/scoring/models"):
        body = client.get(url, headers=headers).json()
        found = body["items"][0] if "items" in body else body
        assert found["scored_count"] in (None, scores), url


def test_a_simulation_counts_only_contacts_the_caller_may_read(
    client: TestClient, db: Session, org: Org
) -> None:
    admin = f.principal(db, org.users["admin"])
    everyone = segment_service.create_list(db=db, principal=admin, name="Everyone")
    segment_service.add_to_list(
        db=db, principal=admin, list_id=everyone.id, contact_ids=list(org.contacts.values())
    )
    db.commit()
    f.share_with_organization(db, "marketing_list", everyone.id)
    # A Support marketer's own draft: which of the list's members are in Japan?
    viewer = f.user(db, "support_marketer", org.support, "Marketer")
    principal = f.principal(db, viewer)
    test = {"field": "country", "value": "JP"}
    definition = {
        "audience": {"lists": [everyone.id]},
        "start": "japan",
        "steps": {
            "japan": {"type": "condition", "test": test, "yes": "in_japan", "no": "elsewhere"},
            "in_japan": {"type": "end"},
            "elsewhere": {"type": "end"},
        },
    }
    journey = journey_service.create_journey(
        db=db, principal=principal, name="Oracle", definition=definition
    )
    db.commit()
    response = client.post(f"{API}/journeys/{journey.id}/simulate", headers=f.token(db, viewer))
    assert response.status_code == 200, response.text
    in_list = select(MarketingListMember.contact_id).where(
        MarketingListMember.list_id == everyone.id
    )
    visible = readable_count(db, principal, Contact, Contact.id.in_(in_list))
    japan = readable_count(db, principal, Contact, Contact.id.in_(in_list), Contact.country == "JP")
    assert response.json()["audience"] <= visible
    assert response.json()["branches"]["japan"]["yes"] <= japan
