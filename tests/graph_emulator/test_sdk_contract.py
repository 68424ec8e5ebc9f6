"""Contract: every JSON body the connector reads parses cleanly with the official SDK models.

The emulator runs on the shipped sample tenant over real HTTP. Each response is parsed with
``msgraph-sdk``'s own model for its type (through kiota's JSON parse node) and the parsed
object graph is walked alongside the JSON. A test fails when

* an object at any depth has a property the SDK model does not declare (it lands in the
  model's ``additional_data``), or
* a property the emulator sent with a non-null value comes back ``None`` after parsing
  (the SDK could not read it: wrong enum spelling, bad date-time, wrong JSON type ...).

So the emulator cannot drift from the real Graph surface without a red test (reference
"Appendix: checking emulator output against the official SDK models"). ``msgraph`` is a
test-only dependency: nothing under ``src/`` may import it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from kiota_serialization_json.json_parse_node import JsonParseNode
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.attendance_record import AttendanceRecord
from msgraph.generated.models.attendance_record_collection_response import (
    AttendanceRecordCollectionResponse,
)
from msgraph.generated.models.call_recording import CallRecording
from msgraph.generated.models.call_recording_collection_response import (
    CallRecordingCollectionResponse,
)
from msgraph.generated.models.call_transcript import CallTranscript
from msgraph.generated.models.call_transcript_collection_response import (
    CallTranscriptCollectionResponse,
)
from msgraph.generated.models.meeting_attendance_report import MeetingAttendanceReport
from msgraph.generated.models.meeting_attendance_report_collection_response import (
    MeetingAttendanceReportCollectionResponse,
)
from msgraph.generated.models.online_meeting_collection_response import (
    OnlineMeetingCollectionResponse,
)
from msgraph.generated.models.subscription import Subscription
from msgraph.generated.models.subscription_collection_response import (
    SubscriptionCollectionResponse,
)
from msgraph.generated.models.teamwork_user_identity import TeamworkUserIdentity
from msgraph.generated.models.user import User
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.models.virtual_event_registration import VirtualEventRegistration
from msgraph.generated.models.virtual_event_registration_collection_response import (
    VirtualEventRegistrationCollectionResponse,
)
from msgraph.generated.models.virtual_event_session import VirtualEventSession
from msgraph.generated.models.virtual_event_session_collection_response import (
    VirtualEventSessionCollectionResponse,
)
from msgraph.generated.models.virtual_event_townhall import VirtualEventTownhall
from msgraph.generated.models.virtual_event_townhall_collection_response import (
    VirtualEventTownhallCollectionResponse,
)
from msgraph.generated.models.virtual_event_webinar import VirtualEventWebinar
from msgraph.generated.models.virtual_event_webinar_collection_response import (
    VirtualEventWebinarCollectionResponse,
)
from msgraph.generated.users.delta.delta_get_response import DeltaGetResponse

from gatherly.graph_emulator import EmulatorState
from gatherly.graph_emulator.fixture import load_fixture
from tests.graph_emulator.conftest import GRAPH_SCOPE, SSL, Emulator, serve
from tests.graph_emulator.receiver import serve_receiver

SAMPLE = Path(__file__).parents[2] / "examples" / "sample-tenant.json"
W = "/solutions/virtualEvents/webinars"
TH = "/solutions/virtualEvents/townhalls"

# OData control annotations: the SDK keeps those it does not model in additional_data.
ODATA_ANNOTATIONS = {
    "@odata.context",
    "@odata.nextLink",
    "@odata.count",
    "@odata.type",
    "@odata.etag",
}
# Keys real Graph v1.0 emits (per the reference) that msgraph-sdk's models do not declare.
# Only these, and only on these SDK types, are tolerated; test_tolerated_keys_are_still_unknown
# flags an entry once the SDK learns the key.
TOLERATED: dict[type[Any], set[str]] = {
    # §3.9: "Doc samples additionally emit a legacy "registrantId": null key."
    AttendanceRecord: {"registrantId"},
    # §2.3: S1 summaries are null "(or [] for capabilities)"; §3.3 lists
    # anonymizeIdentityForRoles on onlineMeetingBase (v1.0 docs), absent from the SDK model.
    VirtualEventSession: {"capabilities", "anonymizeIdentityForRoles"},
    # §3.10: callRecording/callTranscript meetingOrganizer.user carries tenantId.
    TeamworkUserIdentity: {"tenantId"},
}


# ------------------------------------------------------------------ walking the parsed graph


def _is_model(value: Any) -> bool:
    return hasattr(value, "get_field_deserializers") and dataclasses.is_dataclass(value)


_ATTRIBUTES: dict[tuple[type[Any], str], str] = {}


def _attribute_for(model: Any, key: str, value: Any) -> str | None:
    """The model attribute the SDK fills from JSON property ``key`` (None: it parsed nothing).

    Found by letting the SDK deserialize the value into a fresh instance and seeing which
    attribute it set; remembered per model type, since the SDK's own lookups are slow.
    """
    cached = _ATTRIBUTES.get((type(model), key))
    if cached is not None:
        return cached if getattr(model, cached) is not None else None
    probe = type(model)()
    before = {f.name: getattr(probe, f.name) for f in dataclasses.fields(probe)}
    try:
        probe.get_field_deserializers()[key](JsonParseNode(value))
    except (ValueError, TypeError):
        return None
    for name, old in before.items():
        new = getattr(probe, name)
        if new is not old and new is not None:
            _ATTRIBUTES[type(model), key] = name
            return name
    return None


@functools.cache
def _declared(model: type[Any]) -> frozenset[str]:
    """The JSON property names an SDK model declares."""
    return frozenset(model().get_field_deserializers())


def _check(raw: Any, parsed: Any, where: str, problems: list[str]) -> None:
    """Walk the JSON and the SDK's parse of it together, collecting contract breaks."""
    if raw is None:
        return
    if parsed is None:
        problems.append(f"{where}: SDK parsed {raw!r} as None")
        return
    if isinstance(raw, list):
        if not isinstance(parsed, list) or len(parsed) != len(raw):
            problems.append(f"{where}: SDK kept {parsed!r} of a {len(raw)}-item list")
            return
        for i, (raw_item, parsed_item) in enumerate(zip(raw, parsed, strict=True)):
            _check(raw_item, parsed_item, f"{where}[{i}]", problems)
        return
    if isinstance(raw, dict):
        if not _is_model(parsed):
            problems.append(f"{where}: SDK parsed an object as {type(parsed).__name__}")
            return
        kind = type(parsed).__name__
        announced = str(raw.get("@odata.type") or "").removeprefix("#microsoft.graph.")
        if announced and announced.lower() != kind.lower():
            problems.append(f"{where}.@odata.type: SDK has no type {announced!r}, read {kind}")
        allowed = ODATA_ANNOTATIONS | TOLERATED.get(type(parsed), set())
        for key in sorted(set(parsed.additional_data or {}) - allowed):
            problems.append(f"{where}.{key}: not a property of SDK type {kind}")
        declared = _declared(type(parsed))
        for key, value in raw.items():
            if key not in declared or value is None or key.startswith("@odata."):
                continue
            attribute = _attribute_for(parsed, key, value)
            if attribute is None:
                problems.append(f"{where}.{key}: SDK type {kind} could not parse {value!r}")
                continue
            _check(value, getattr(parsed, attribute), f"{where}.{key}", problems)
    # a scalar the SDK parsed to a value (str, int, bool, enum member, datetime ...) is fine


def contract_problems(body: bytes, model: type[Any]) -> list[str]:
    """Everything in one JSON body that the SDK model for it does not accept."""
    node = JsonParseNodeFactory().get_root_parse_node("application/json", body)
    try:
        parsed = node.get_object_value(model)
    except (ValueError, TypeError) as exc:  # e.g. an impossible date-time
        return [f"$: SDK could not parse the body as {model.__name__}: {exc!r}"]
    problems: list[str] = []
    _check(json.loads(body), parsed, "$", problems)
    return problems


# ------------------------------------------------------------------ the endpoints


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One Graph call the connector makes, the SDK model of its body, and its sample paths."""

    name: str
    model: type[Any]
    paths: Callable[[EmulatorState], list[str]]
    collection: bool = False


def _granted_webinars(state: EmulatorState) -> list[dict[str, Any]]:
    """The webinars the app may read: their organizer holds an access policy."""
    return [w for w in state.data["webinars"] if state.granted(state.organizer_id(w))]


def _granted_townhalls(state: EmulatorState) -> list[dict[str, Any]]:
    """The town halls the app may read (the same access policy as webinars)."""
    return [t for t in state.townhalls if state.granted(state.organizer_id(t))]


def _webinar_path(webinar: dict[str, Any]) -> str:
    if webinar.get("@odata.type") == "#microsoft.graph.virtualEventTownhall":
        return _townhall_path(webinar)
    return f"{W}/{quote(webinar['id'], safe='@')}"


def _townhall_path(townhall: dict[str, Any]) -> str:
    return f"{TH}/{quote(townhall['id'], safe='@')}"


def _registrations(state: EmulatorState) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """One registration of each kind per webinar (R1 already returns every one of them)."""
    for w in _granted_webinars(state):
        kinds: set[tuple[object, ...]] = set()
        for r in w.get("registrations", []):
            kind = (*(r.get(k) is None for k in r), r.get("status"))
            if kind not in kinds:
                kinds.add(kind)
                yield w, r


def _sessions(state: EmulatorState) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every session of a webinar or town hall the app may read (the same session API)."""
    for w in [*_granted_webinars(state), *_granted_townhalls(state)]:
        for s in w.get("sessions", []):
            yield w, s


def _session_path(webinar: dict[str, Any], session: dict[str, Any]) -> str:
    return f"{_webinar_path(webinar)}/sessions/{quote(session['id'], safe='')}"


def _reports(state: EmulatorState) -> Iterator[str]:
    for w, s in _sessions(state):
        for r in s.get("attendanceReports", []):
            yield f"{_session_path(w, s)}/attendanceReports/{quote(r['id'], safe='')}"


def _meetings(state: EmulatorState, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for w, s in _sessions(state):
        organizer = state.organizer_id(w)
        meeting = quote(state.meeting_id(w, s), safe="")
        yield f"/users/{organizer}/onlineMeetings/{meeting}/{kind}", s


def _users_by_role(state: EmulatorState, role: str, base: str = W) -> list[str]:
    users = [u["id"] for u in state.data["users"] if state.granted(u["id"])]
    return [f"{base}/getByUserIdAndRole(userId='{u}',role='{role}')" for u in users]


ENDPOINTS = [
    Endpoint(
        "U1 list users",
        UserCollectionResponse,
        lambda st: ["/users"],
        collection=True,
    ),
    Endpoint("U2 get user", User, lambda st: [f"/users/{u['id']}" for u in st.data["users"]]),
    Endpoint("U3 users delta", DeltaGetResponse, lambda st: ["/users/delta"], collection=True),
    Endpoint(
        "W1 list webinars",
        VirtualEventWebinarCollectionResponse,
        lambda st: [f"{W}?$count=true"],
        collection=True,
    ),
    Endpoint(
        "W2 get webinar",
        VirtualEventWebinar,
        lambda st: [_webinar_path(w) for w in _granted_webinars(st)],
    ),
    Endpoint(
        "W3 getByUserIdAndRole organizer",
        VirtualEventWebinarCollectionResponse,
        lambda st: _users_by_role(st, "organizer"),
        collection=True,
    ),
    Endpoint(
        "W3 getByUserIdAndRole coOrganizer",
        VirtualEventWebinarCollectionResponse,
        lambda st: _users_by_role(st, "coOrganizer"),
        collection=True,
    ),
    Endpoint(
        "TH1 list town halls",
        VirtualEventTownhallCollectionResponse,
        lambda st: [f"{TH}?$count=true"],
        collection=True,
    ),
    Endpoint(
        "TH2 get town hall",
        VirtualEventTownhall,
        lambda st: [_townhall_path(t) for t in _granted_townhalls(st)],
    ),
    Endpoint(
        "TH3 getByUserIdAndRole organizer",
        VirtualEventTownhallCollectionResponse,
        lambda st: _users_by_role(st, "organizer", TH),
        collection=True,
    ),
    Endpoint(
        "TH3 getByUserIdAndRole coOrganizer",
        VirtualEventTownhallCollectionResponse,
        lambda st: _users_by_role(st, "coOrganizer", TH),
        collection=True,
    ),
    Endpoint(
        "TH S1 list town hall sessions",
        VirtualEventSessionCollectionResponse,
        lambda st: [f"{_townhall_path(t)}/sessions" for t in _granted_townhalls(st)],
        collection=True,
    ),
    Endpoint(
        "R1 list registrations",
        VirtualEventRegistrationCollectionResponse,
        lambda st: [f"{_webinar_path(w)}/registrations" for w in _granted_webinars(st)],
        collection=True,
    ),
    Endpoint(
        "R2 get registration",
        VirtualEventRegistration,
        lambda st: [f"{_webinar_path(w)}/registrations/{r['id']}" for w, r in _registrations(st)],
    ),
    Endpoint(
        "R3 registration by email",
        VirtualEventRegistration,
        lambda st: [
            f"{_webinar_path(w)}/registrations(email='{quote(r['email'], safe='@')}')"
            for w, r in _registrations(st)
        ],
    ),
    Endpoint(
        "R4 registration by userId",
        VirtualEventRegistration,
        lambda st: [
            f"{_webinar_path(w)}/registrations(userId='{r['userId']}')"
            for w, r in _registrations(st)
            if r.get("userId")
        ],
    ),
    Endpoint(
        "S1 list sessions",
        VirtualEventSessionCollectionResponse,
        lambda st: [f"{_webinar_path(w)}/sessions" for w in _granted_webinars(st)],
        collection=True,
    ),
    Endpoint(
        "S2 get session",
        VirtualEventSession,
        lambda st: [_session_path(w, s) for w, s in _sessions(st)],
    ),
    Endpoint(
        "A1 list attendance reports",
        MeetingAttendanceReportCollectionResponse,
        lambda st: [f"{_session_path(w, s)}/attendanceReports" for w, s in _sessions(st)],
        collection=True,
    ),
    Endpoint("A2 get attendance report", MeetingAttendanceReport, lambda st: list(_reports(st))),
    Endpoint(
        "A2 get attendance report $expand=attendanceRecords",
        MeetingAttendanceReport,
        lambda st: [f"{p}?$expand=attendanceRecords" for p in _reports(st)],
    ),
    Endpoint(
        "A3 list attendance records",
        AttendanceRecordCollectionResponse,
        lambda st: [f"{p}/attendanceRecords" for p in _reports(st)],
        collection=True,
    ),
    Endpoint(
        "M1 online meeting by JoinWebUrl",
        OnlineMeetingCollectionResponse,
        lambda st: [
            f"/users/{st.organizer_id(w)}/onlineMeetings?$filter="
            + quote(f"JoinWebUrl eq '{s['joinWebUrl']}'", safe="")
            for w, s in _sessions(st)
        ],
        collection=True,
    ),
    Endpoint(
        "C1 list recordings",
        CallRecordingCollectionResponse,
        lambda st: [p for p, _ in _meetings(st, "recordings")],
        collection=True,
    ),
    Endpoint(
        "C2 get recording",
        CallRecording,
        lambda st: [
            f"{p}/{quote(r['id'], safe='')}"
            for p, s in _meetings(st, "recordings")
            for r in s.get("recordings", [])
        ],
    ),
    Endpoint(
        "T1 list transcripts",
        CallTranscriptCollectionResponse,
        lambda st: [p for p, _ in _meetings(st, "transcripts")],
        collection=True,
    ),
    Endpoint(
        "T2 get transcript",
        CallTranscript,
        lambda st: [
            f"{p}/{quote(t['id'], safe='')}"
            for p, s in _meetings(st, "transcripts")
            for t in s.get("transcripts", [])
        ],
    ),
]


# ------------------------------------------------------------------ the emulator


@pytest.fixture(scope="module")
def sample() -> Iterator[Emulator]:
    """The emulator serving the shipped sample tenant."""
    with serve(EmulatorState(load_fixture(SAMPLE), page_size=10)) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def sample_graph(sample: Emulator) -> Iterator[httpx.Client]:
    """A Graph client with a token for the sample tenant's fully permitted application."""
    state = sample.state
    app = max(state.data["applications"], key=lambda a: len(a["permissions"]))
    response = httpx.post(
        f"{sample.base_url}/{state.tenant['id']}/oauth2/v2.0/token",
        verify=SSL,
        data={
            "client_id": app["appId"],
            "client_secret": app["secret"],
            "scope": GRAPH_SCOPE,
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 200, response.text
    with sample.client(response.json()["access_token"]) as client:
        yield client


def _bodies(graph: httpx.Client, path: str, collection: bool) -> Iterator[tuple[str, bytes]]:
    """The JSON body at ``path``, and for collections every later page too."""
    url: str | None = path
    while url is not None:
        response = graph.get(url)
        assert response.status_code == 200, f"GET {url}: {response.status_code} {response.text}"
        assert response.headers["content-type"].startswith("application/json")
        yield url, response.content
        url = response.json().get("@odata.nextLink") if collection else None


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_sdk_models_accept_every_response(
    endpoint: Endpoint, sample: Emulator, sample_graph: httpx.Client
) -> None:
    paths = endpoint.paths(sample.state)
    assert paths, f"the sample tenant has nothing to call {endpoint.name} on"
    problems: list[str] = []
    items = 0
    for path in paths:
        for url, body in _bodies(sample_graph, path, endpoint.collection):
            items += len(json.loads(body).get("value", [None]))
            problems += [f"GET {url}: {p}" for p in contract_problems(body, endpoint.model)]
    assert items, f"{endpoint.name}: every response was an empty collection"
    assert not problems, f"{endpoint.name}: {len(problems)} contract breaks\n" + "\n".join(
        problems[:40]
    )


def test_sdk_models_accept_subscriptions(sample: Emulator, sample_graph: httpx.Client) -> None:
    """POST, GET and the list of /subscriptions (a real endpoint answers the handshake)."""
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")
    with serve_receiver() as hook:
        created = sample_graph.post(
            "/subscriptions",
            json={
                "changeType": "created",
                "notificationUrl": hook.url(),
                "lifecycleNotificationUrl": hook.url("lifecycle"),
                "resource": "solutions/virtualEvents/events",
                "expirationDateTime": expires,
                "clientState": "contract",
            },
        )
    assert created.status_code == 201, created.text
    try:
        fetched = sample_graph.get(f"/subscriptions/{created.json()['id']}")
        listed = sample_graph.get("/subscriptions")
        problems = [
            *contract_problems(created.content, Subscription),
            *contract_problems(fetched.content, Subscription),
            *contract_problems(listed.content, SubscriptionCollectionResponse),
        ]
        assert len(listed.json()["value"]) == 1
        assert not problems, "\n".join(problems)
    finally:
        assert sample_graph.delete(f"/subscriptions/{created.json()['id']}").status_code == 204


# ------------------------------------------------------------------ the checker itself


def test_the_checker_catches_unknown_and_unparsable_properties() -> None:
    body = (
        b'{"@odata.context": "x", "id": "w", "status": "Published!", '
        b'"audience": "everyone", "bogus": 1, '
        b'"startDateTime": {"dateTime": "2025-09-18T16:00:00", "timeZone": "UTC", "zone": 2}, '
        b'"createdBy": {"user": {"@odata.type": "#microsoft.graph.communicationsUserIdentity", '
        b'"id": "u", "tenantId": 5}}, '
        b'"coOrganizers": [{"id": "c", "extra": true}], '
        b'"settings": {"@odata.type": "#microsoft.graph.webinarSettings"}}'
    )
    assert contract_problems(body, VirtualEventWebinar) == [
        "$.bogus: not a property of SDK type VirtualEventWebinar",
        "$.status: SDK type VirtualEventWebinar could not parse 'Published!'",
        "$.startDateTime.zone: not a property of SDK type DateTimeTimeZone",
        "$.createdBy.user.tenantId: SDK type CommunicationsUserIdentity could not parse 5",
        "$.coOrganizers[0].extra: not a property of SDK type CommunicationsUserIdentity",
        "$.settings.@odata.type: SDK has no type 'webinarSettings', read VirtualEventSettings",
    ]
    report = b'{"id": "r", "meetingStartDateTime": "soon", "totalParticipantCount": 3}'
    assert contract_problems(report, MeetingAttendanceReport) == [
        "$.meetingStartDateTime: SDK type MeetingAttendanceReport could not parse 'soon'",
    ]


@pytest.mark.parametrize("model", list(TOLERATED), ids=lambda m: m.__name__)
def test_tolerated_keys_are_still_unknown(model: type[Any]) -> None:
    known = set(model().get_field_deserializers())
    assert TOLERATED[model] - known == TOLERATED[model], "the SDK models these now: drop them"


def test_the_product_never_imports_the_sdk() -> None:
    src = Path(__file__).parents[2] / "src"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if any(
            line.lstrip().startswith(
                ("import msgraph", "from msgraph", "import kiota", "from kiota")
            )
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
