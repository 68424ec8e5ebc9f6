"""The scoring API (issue 18): models made, checked and taken live over HTTP, scores and
their explanation, the CSV export through the one writer, and B9's rule that a score is
its model owner's record — the same model shows its scores, and their count, only to
those whose roles reach its owner."""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.core.audit import AuditEntry
from gatherly.scoring import service
from gatherly.scoring.models import ScoringModel
from tests.api.conftest import Org
from tests.api.helpers import assert_error

API = "/api/v1/scoring"
CONDITIONS: list[dict[str, Any]] = [
    {"name": "In Germany", "points": 30, "contact": {"country": "DE"}},
    {"name": "Any country", "points": 5, "contact": {"country": {"empty": False}}},
]


def _live_model(client: TestClient, org: Org, db: Session, who: str = "marketer") -> int:
    headers = org.headers[who]
    body = {"name": "Fit", "conditions": CONDITIONS, "sales_ready": 30}
    made = client.post(f"{API}/models", json=body, headers=headers)
    assert made.status_code == 201, made.text
    model_id = int(made.json()["id"])
    assert made.json()["grades"][0] == {"grade": "A", "min": 100}
    assert client.put(
        f"{API}/models/{model_id}/state", json={"state": "live"}, headers=headers
    ).json()["full_pending"]
    model = db.get(ScoringModel, model_id)
    assert model is not None
    service.run_full(db, model, now=model.modified_at)  # what the worker does
    db.commit()
    return model_id


def test_a_model_over_http_and_scores_only_its_owners_bu_may_see(
    client: TestClient, org: Org, db: Session
) -> None:
    model_id = _live_model(client, org, db)
    mine = org.headers["marketer"]
    listed = client.get(f"{API}/scores", params={"model_id": model_id}, headers=mine).json()
    by_contact = {s["contact_id"]: s for s in listed["items"]}
    # The marketer (Sales, BU level) reads the contacts of Sales: the manager's and theirs.
    germans = {c for c in by_contact if by_contact[c]["score"] == 35}
    assert by_contact[org.contacts["marketer"]]["name"] == "Marketer Owner-marketer"
    assert all(
        s["owner"] == {"type": "user", "id": org.users["marketer"].id} for s in listed["items"]
    )
    assert listed["items"] == sorted(listed["items"], key=lambda s: -s["score"])
    assert all(by_contact[c]["sales_ready"] for c in germans)

    # Support's assistant and Sales EU's marketer (another BU) see no score of it, as a
    # record, in a list, or in a count; and not the model either.
    for other in ("support_assistant", "eu_marketer"):
        headers = org.headers[other]
        assert client.get(f"{API}/scores", headers=headers).json()["items"] == []
        assert_error(
            client.get(f"{API}/scores", params={"model_id": model_id}, headers=headers), 404
        )
        some = listed["items"][0]["id"]
        assert_error(client.get(f"{API}/scores/{some}", headers=headers), 404)
        assert_error(client.get(f"{API}/scores/{some}/explanation", headers=headers), 404)
        assert_error(client.get(f"{API}/models/{model_id}/scores.csv", headers=headers), 404)
        assert_error(
            client.patch(f"{API}/models/{model_id}", json={"name": "X"}, headers=headers), 404
        )
        assert_error(client.delete(f"{API}/models/{model_id}", headers=headers), 404)
    # The manager (Sales and below) sees them all.
    seen = client.get(
        f"{API}/scores", params={"model_id": model_id}, headers=org.headers["manager"]
    )
    assert {s["id"] for s in seen.json()["items"]} == {s["id"] for s in listed["items"]}

    said = client.get(
        f"{API}/scores/{by_contact[org.contacts['marketer']]['id']}/explanation", headers=mine
    ).json()
    assert said["current"]
    assert [p["earned"] for p in said["parts"]] == [
        30 if by_contact[org.contacts["marketer"]]["score"] == 35 else 0,
        5,
    ]

    export = client.get(f"{API}/models/{model_id}/scores.csv", headers=mine)
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {int(r["score_id"]) for r in rows} == {s["id"] for s in listed["items"]}


def test_bad_models_get_a_4xx_naming_the_field_and_change_nothing(
    client: TestClient, org: Org, db: Session
) -> None:
    headers = org.headers["marketer"]
    before = db.scalar(select(func.count()).select_from(ScoringModel))
    bad = [
        ({"name": "X", "conditions": [{"name": "n", "points": "many"}]}, "conditions[0].points"),
        (
            {"name": "X", "conditions": [{"name": "n", "points": 1, "interaction": "waved"}]},
            "conditions[0].interaction",
        ),
        (
            {
                "name": "X",
                "conditions": [
                    {"name": "n", "points": 1, "interaction": "attended", "event": {"id": 999}}
                ],
            },
            "conditions[0].event.id",
        ),
        (
            {"name": "X", "grades": [{"grade": "A", "min": None}, {"grade": "B", "min": 1}]},
            "grades[0].min",
        ),
        ({"name": "X", "target": "account"}, "target"),
    ]
    for body, field in bad:
        response = client.post(f"{API}/models", json=body, headers=headers)
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]["field"] == field, (field, response.text)
    assert db.scalar(select(func.count()).select_from(ScoringModel)) == before
    draft = client.post(f"{API}/models", json={"name": "Empty"}, headers=headers).json()
    assert_error(
        client.put(f"{API}/models/{draft['id']}/state", json={"state": "live"}, headers=headers),
        409,
        "conditions",
    )
    assert_error(client.post(f"{API}/models/{draft['id']}/rescore", headers=headers), 409, "state")


def test_giving_a_model_away_moves_its_scores_and_is_audited(
    client: TestClient, org: Org, db: Session
) -> None:
    model_id = _live_model(client, org, db)
    support = org.users["support_assistant"]
    moved = client.put(
        f"{API}/models/{model_id}/owner",
        json={"type": "user", "id": support.id},
        headers=org.headers["admin"],
    )
    assert moved.status_code == 200, moved.text
    # Now the marketer sees none of its scores; the new owner sees them all.
    mine = client.get(
        f"{API}/scores", params={"model_id": model_id}, headers=org.headers["marketer"]
    )
    assert_error(mine, 404)
    theirs = client.get(f"{API}/scores", headers=org.headers["support_assistant"]).json()["items"]
    assert theirs
    assert {s["owning_bu_id"] for s in theirs} == {org.support.id}
    actions = set(
        db.scalars(select(AuditEntry.action).where(AuditEntry.target_type == "scoring_model"))
    )
    assert {"scoring_model.create", "scoring_model.live", "scoring_model.assign"} <= actions


def test_explicit_nulls_mean_the_defaults(client: TestClient, org: Org) -> None:
    body = {"name": "N", "conditions": None, "target": None, "grades": None, "description": None}
    made = client.post(f"{API}/models", json=body, headers=org.headers["marketer"])
    assert made.status_code == 201, made.text
    assert (made.json()["target"], made.json()["conditions"]) == ("contact", [])
    assert made.json()["grades"][0]["grade"] == "A"
