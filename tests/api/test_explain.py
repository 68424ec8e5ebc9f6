"""``GET /access/explain``: your own access is yours to explain, others' need admin, and an
explanation never reveals a record the caller cannot read."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.org import service as org_service
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error

URL = f"{API}/access/explain"


def _explain(client: TestClient, headers: dict[str, str], **params: Any) -> Any:
    return client.get(URL, params=params, headers=headers)


def test_a_user_explains_their_own_access(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["manager"]
    response = _explain(client, headers, record_type="contact", record_id=rid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["allowed"] is True
    assert (body["user_id"], body["username"]) == (org.users["marketer"].id, "marketer")
    assert (body["record_type"], body["record_id"], body["privilege"]) == ("contact", rid, "read")
    granted = [p for p in body["paths"] if p["granted"]]
    assert [(p["path"], p["role"], p["level"]) for p in granted] == [
        ("business_unit", "Marketer", "business_unit")
    ]
    ownership = next(p for p in body["paths"] if p["path"] == "ownership")
    assert ownership["granted"] is False
    # Naming yourself is the same as not naming anyone.
    same = _explain(
        client, headers, record_type="contact", record_id=rid, user_id=org.users["marketer"].id
    )
    assert same.json() == body
    lead = _explain(
        client, headers, record_type="lead", record_id=org.leads["marketer"], privilege="delete"
    )
    assert lead.json()["allowed"] is True
    assert any(p["path"] == "ownership" and p["granted"] for p in lead.json()["paths"])


def test_explain_reports_a_denial_the_caller_can_see(
    client: TestClient, db: Session, org: Org
) -> None:
    role = f.role(db, "Sales reader", Level.BUSINESS_UNIT, "contact", ("read",))
    reader = f.user(db, "reader", org.sales, role)
    db.commit()
    headers = f.token(db, reader)
    rid = org.contacts["marketer"]
    body = _explain(client, headers, record_type="contact", record_id=rid, privilege="write").json()
    assert body["allowed"] is False
    assert "write" in body["summary"]
    assert [p["path"] for p in body["paths"]] == ["privilege"]
    # Organization-owned types need no record id.
    bus = _explain(client, headers, record_type="business_unit", privilege="create").json()
    assert bus["allowed"] is False
    admin = _explain(client, org.headers["admin"], record_type="business_unit", privilege="create")
    assert admin.json()["allowed"] is True


def test_explaining_a_record_you_cannot_read_is_404_like_a_missing_one(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["marketer"]
    hidden = org.contacts["support"]
    missing = 999999
    for privilege in ("read", "write"):
        hidden_error = assert_error(
            _explain(client, headers, record_type="contact", record_id=hidden, privilege=privilege),
            404,
            "record_id",
        )
        missing_error = assert_error(
            _explain(client, headers, record_type="contact", record_id=missing),
            404,
            "record_id",
        )
        assert hidden_error["message"].replace(str(hidden), "N") == missing_error[
            "message"
        ].replace(str(missing), "N")
    assert_error(
        _explain(client, headers, record_type="lead", record_id=org.leads["eu"]), 404, "record_id"
    )
    # The same record becomes explainable once it is shared with the caller.
    share = {"principal_type": "user", "principal_id": org.users["marketer"].id, "rights": ["read"]}
    shared = client.post(
        f"{API}/contacts/{hidden}/shares", json=share, headers=org.headers["support_assistant"]
    )
    assert shared.status_code == 201
    body = _explain(client, headers, record_type="contact", record_id=hidden).json()
    assert body["allowed"] is True
    assert [p["path"] for p in body["paths"] if p["granted"]] == ["share"]


def test_explaining_another_users_access_needs_admin(client: TestClient, org: Org) -> None:
    subject = org.users["manager"].id
    rid = org.contacts["marketer"]  # readable by every caller below except nobody
    for name in ("marketer", "orgadmin", "assistant", "nobody"):
        response = _explain(
            client, org.headers[name], record_type="contact", record_id=rid, user_id=subject
        )
        assert assert_error(response, 403)["code"] == "forbidden", name
    # Unknown users look the same as known ones to a non-admin.
    assert_error(
        _explain(
            client, org.headers["marketer"], record_type="contact", record_id=rid, user_id=999999
        ),
        403,
    )
    admin = org.headers["admin"]
    body = _explain(client, admin, record_type="contact", record_id=rid, user_id=subject).json()
    assert (body["user_id"], body["username"], body["allowed"]) == (subject, "manager", True)
    assert [p["path"] for p in body["paths"] if p["granted"]] == ["parent_child"]
    denied = _explain(
        client,
        admin,
        record_type="contact",
        record_id=rid,
        user_id=org.users["support_assistant"].id,
    ).json()
    assert denied["allowed"] is False
    nobody = _explain(
        client, admin, record_type="contact", record_id=rid, user_id=org.users["nobody"].id
    ).json()
    assert nobody["allowed"] is False
    assert "privilege check" in nobody["summary"]
    assert_error(
        _explain(client, admin, record_type="contact", record_id=rid, user_id=999999),
        404,
        "user_id",
    )


def test_a_user_admin_explains_others_only_on_records_they_can_read(
    client: TestClient, db: Session, org: Org
) -> None:
    user_admin = f.role(db, "User admin", Level.ORGANIZATION, "user", ("read", "write"))
    org_service.assign_role(db=db, role_id=user_admin, user_id=org.users["eu_marketer"].id)
    db.commit()
    headers = org.headers["eu_marketer"]
    subject = org.users["manager"].id
    readable = _explain(
        client, headers, record_type="contact", record_id=org.contacts["eu"], user_id=subject
    )
    assert readable.status_code == 200
    assert readable.json()["allowed"] is True
    # The manager could read this one, but the explainer cannot: no leak.
    hidden = _explain(
        client, headers, record_type="contact", record_id=org.contacts["marketer"], user_id=subject
    )
    assert_error(hidden, 404, "record_id")


def test_bad_explain_parameters_are_422_naming_the_field(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    rid = org.contacts["marketer"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"record_id": rid}, "record_type"),
        ({"record_type": "spaceship", "record_id": rid}, "record_type"),
        ({"record_type": "contact"}, "record_id"),
        ({"record_type": "contact", "record_id": "first"}, "record_id"),
        ({"record_type": "contact", "record_id": rid, "privilege": "fly"}, "privilege"),
        (
            {"record_type": "contact", "record_id": rid, "privilege": "create", "user_id": "me"},
            "user_id",
        ),
    ]
    for params, field in cases:
        assert_error(_explain(client, headers, **params), 422, field)
