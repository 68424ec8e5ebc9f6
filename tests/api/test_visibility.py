"""What each built-in role may read, count, change and delete through every record route.

The rule: a record the caller may not read does not exist for them (404 on every record
route, absent from lists and counts); a record they may read but not change answers 403.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.access.levels import Level
from gatherly.access.models import RecordShare
from gatherly.contact.models import Contact, Lead
from tests import factories as f
from tests.api.conftest import EVERYTHING, VISIBLE, Org
from tests.api.helpers import API, assert_error, count, visible_ids, walk_ids

KINDS = ["contacts", "leads"]
MODELS: dict[str, type[Contact] | type[Lead]] = {"contacts": Contact, "leads": Lead}


@pytest.mark.parametrize("kind", KINDS)
def test_list_and_count_hold_exactly_the_readable_records(
    client: TestClient, org: Org, kind: str
) -> None:
    for viewer, keys in VISIBLE.items():
        expected = org.ids(kind, keys)
        # Walk every page (two items each), check /count equals the items seen.
        assert visible_ids(client, kind, org.headers[viewer], limit=2) == expected, viewer
        ids = walk_ids(client, kind, org.headers[viewer], limit=3, sort="-last_name")
        assert sorted(ids) == sorted(expected), viewer


@pytest.mark.parametrize("kind", KINDS)
def test_unreadable_records_answer_404_on_every_record_route(
    client: TestClient, db: Session, org: Org, kind: str
) -> None:
    # One existing share per record (to a user without roles, so it grants nothing),
    # so that the share routes have something real to reveal or revoke.
    record_type = kind.removesuffix("s")
    shares = {}
    for key, rid in org.records(kind).items():
        row = RecordShare(
            record_type=record_type,
            record_id=rid,
            principal_type="user",
            principal_id=org.users["nobody"].id,
            rights=1,
        )
        db.add(row)
        db.flush()
        shares[key] = row.id
    db.commit()
    for viewer, keys in VISIBLE.items():
        headers = org.headers[viewer]
        uid = org.users[viewer].id
        hidden = sorted(EVERYTHING - keys)
        for key in hidden:
            rid = org.records(kind)[key]
            assert_error(client.get(f"{API}/{kind}/{rid}", headers=headers), 404, "id")
        if not hidden:
            continue
        # Filtering on a hidden record's exact values does not reveal it either.
        assert count(client, kind, headers, email=f"{hidden[0]}@example.com") == 0
        # Every other record route, on one hidden record per viewer.
        rid = org.records(kind)[hidden[0]]
        share = {"principal_type": "user", "principal_id": uid, "rights": ["read"]}
        calls = [
            client.patch(f"{API}/{kind}/{rid}", json={"first_name": "X"}, headers=headers),
            client.delete(f"{API}/{kind}/{rid}", headers=headers),
            client.post(
                f"{API}/{kind}/{rid}/assign",
                json={"owner": {"type": "user", "id": uid}},
                headers=headers,
            ),
            client.get(f"{API}/{kind}/{rid}/shares", headers=headers),
            client.post(f"{API}/{kind}/{rid}/shares", json=share, headers=headers),
            client.delete(f"{API}/{kind}/{rid}/shares/{shares[hidden[0]]}", headers=headers),
        ]
        for response in calls:
            error = assert_error(response, 404, "id")
            assert error["code"] == "not_found"
            assert error["message"] == f"{record_type} {rid} not found"
    # Nothing was changed, deleted, reassigned, shared or unshared.
    db.expire_all()
    model = MODELS[kind]
    rows = db.execute(select(model.id, model.first_name, model.owner_type, model.owner_id)).all()
    assert {r.id: (r.first_name, (r.owner_type, r.owner_id)) for r in rows} == {
        rid: (key.capitalize(), org.owners[key]) for key, rid in org.records(kind).items()
    }
    assert sorted(db.execute(select(RecordShare.id)).scalars()) == sorted(shares.values())
    assert count(client, kind, org.headers["admin"]) == len(EVERYTHING)


@pytest.mark.parametrize("kind", KINDS)
def test_readable_records_answer_200_and_built_in_roles_may_change_them(
    client: TestClient, org: Org, kind: str
) -> None:
    # Every built-in role grants all privileges at its level: read implies write.
    for viewer, keys in VISIBLE.items():
        for key in sorted(keys):
            rid = org.records(kind)[key]
            response = client.get(f"{API}/{kind}/{rid}", headers=org.headers[viewer])
            assert response.status_code == 200, (viewer, key, response.text)
            assert response.json()["email"] == f"{key}@example.com"
        if keys:
            rid = org.records(kind)[sorted(keys)[0]]
            response = client.patch(
                f"{API}/{kind}/{rid}", json={"job_title": viewer}, headers=org.headers[viewer]
            )
            assert response.status_code == 200, (viewer, response.text)
            assert response.json()["job_title"] == viewer


@pytest.mark.parametrize("kind", KINDS)
def test_delete_reaches_as_far_as_read(client: TestClient, org: Org, kind: str) -> None:
    eu = org.records(kind)["eu"]
    # A marketer in Sales does not reach Sales EU; the Sales manager (parent-child) does.
    assert_error(client.delete(f"{API}/{kind}/{eu}", headers=org.headers["marketer"]), 404)
    assert client.delete(f"{API}/{kind}/{eu}", headers=org.headers["manager"]).status_code == 204
    assert_error(client.get(f"{API}/{kind}/{eu}", headers=org.headers["admin"]), 404)
    assert count(client, kind, org.headers["eu_marketer"]) == 0
    assert count(client, kind, org.headers["admin"]) == len(EVERYTHING) - 1


@pytest.mark.parametrize("kind", KINDS)
def test_read_only_role_gets_403_on_changes_and_the_record_stays(
    client: TestClient, db: Session, org: Org, kind: str
) -> None:
    record_type = kind.removesuffix("s")
    reader_role = f.role(db, "Sales reader", Level.BUSINESS_UNIT, record_type, ("read",))
    reader = f.user(db, "reader", org.sales, reader_role)
    db.commit()
    headers = f.token(db, reader)
    rid = org.records(kind)["marketer"]
    assert client.get(f"{API}/{kind}/{rid}", headers=headers).status_code == 200
    assert visible_ids(client, kind, headers) == org.ids(kind, VISIBLE["marketer"])
    patch = client.patch(f"{API}/{kind}/{rid}", json={"first_name": "X"}, headers=headers)
    assert assert_error(patch, 403)["code"] == "forbidden"
    assert_error(client.delete(f"{API}/{kind}/{rid}", headers=headers), 403)
    assign = {"owner": {"type": "user", "id": reader.id}}
    assert_error(client.post(f"{API}/{kind}/{rid}/assign", json=assign, headers=headers), 403)
    share = {"principal_type": "organization", "rights": ["read"]}
    assert_error(client.post(f"{API}/{kind}/{rid}/shares", json=share, headers=headers), 403)
    assert_error(client.post(f"{API}/{kind}", json={"last_name": "New"}, headers=headers), 403)
    after = client.get(f"{API}/{kind}/{rid}", headers=org.headers["admin"]).json()
    assert after["first_name"] == "Marketer"
    assert after["owner"] == {"type": "user", "id": org.users["marketer"].id}
    assert count(client, kind, org.headers["admin"]) == len(EVERYTHING)
    assert count(client, kind, org.headers["assistant"]) == len(VISIBLE["assistant"])


@pytest.mark.parametrize("kind", KINDS)
def test_user_without_roles_sees_and_creates_nothing(
    client: TestClient, org: Org, kind: str
) -> None:
    headers = org.headers["nobody"]
    assert count(client, kind, headers) == 0
    page = client.get(f"{API}/{kind}", headers=headers).json()
    assert page == {"items": [], "next_cursor": None}
    assert_error(client.post(f"{API}/{kind}", json={"last_name": "Mine"}, headers=headers), 403)
    assert count(client, kind, org.headers["admin"]) == len(EVERYTHING)


def test_filters_only_narrow_the_readable_set(client: TestClient, org: Org) -> None:
    for viewer, keys in VISIBLE.items():
        headers = org.headers[viewer]
        de = visible_ids(client, "contacts", headers, country="DE")
        assert de == org.ids("contacts", keys & {"manager", "marketer"}), viewer
        by_team = visible_ids(client, "leads", headers, owner_type="team")
        assert by_team == org.ids("leads", keys & {"team"}), viewer
