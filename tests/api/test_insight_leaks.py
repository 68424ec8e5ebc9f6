"""Every scoring, report and dashboard route that names a record, walked from the app's
own route table as users whose roles do not reach it (issue 18): a Marketer of another
business unit and a user with no roles get 404 for the record, see it in no list and no
count, and change nothing — while its owner's own requests succeed."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

import gatherly.models
from gatherly.report import service as reports
from gatherly.scoring import service as scoring
from gatherly.scoring.models import LeadScore
from tests import factories as f
from tests.api.conftest import Org
from tests.routing import api_route_pairs

API = "/api/v1"
PREFIXES = (f"{API}/scoring/", f"{API}/reports/{{report_id}}", f"{API}/dashboards/")
BODIES = {
    "PATCH": {"name": "Taken"},
    "PUT": {"state": "draft"},
    "POST": {},
}


def _snapshot(db: Session) -> dict[str, list[tuple[Any, ...]]]:
    db.expire_all()
    names = ("scoring_model", "lead_score", "report", "dashboard", "audit_entry")
    tables = [t for t in gatherly.models.Base.metadata.sorted_tables if t.name in names]
    return {
        t.name: sorted(tuple(map(repr, r)) for r in db.execute(select(t)).all()) for t in tables
    }


def test_other_units_and_roleless_users_reach_no_score_report_or_dashboard(
    client: TestClient, org: Org, db: Session
) -> None:
    owner = f.principal(db, org.users["marketer"])
    conditions = [{"name": "Any", "points": 1, "contact": {"country": {"empty": False}}}]
    model = scoring.create_model(db=db, principal=owner, name="Fit", conditions=conditions)
    scoring.set_state(db=db, principal=owner, model_id=model.id, state="live")
    scoring.rescore_model(db=db, principal=owner, model_id=model.id)
    score = db.scalar(select(LeadScore.id).where(LeadScore.model_id == model.id))
    definition = {"source": "contacts", "group_by": ["country"], "measures": ["contacts"]}
    report = reports.create_report(db=db, principal=owner, name="Mine", definition=definition)
    board = reports.create_dashboard(
        db=db, principal=owner, name="Board", items=[{"report": report.id}]
    )
    db.commit()
    ids = {
        "model_id": model.id,
        "score_id": score,
        "report_id": report.id,
        "dashboard_id": board.id,
    }
    routes = sorted(
        (method, path)
        for route, path in api_route_pairs(client.app)  # type: ignore[arg-type]
        for method in route.methods
        if path.startswith(PREFIXES) and re.search(r"\{(\w+)\}", path)
    )
    assert len(routes) == 17, routes
    before = _snapshot(db)
    for who in ("eu_marketer", "nobody"):
        headers = org.headers[who]
        for method, path in routes:
            url = re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
            body = {"type": "user", "id": org.users[who].id} if path.endswith("/owner") else None
            response = client.request(method, url, headers=headers, json=body or BODIES.get(method))
            assert response.status_code == 404, (who, method, path, response.text)
        # Nor in a list, nor in a count.
        assert client.get(f"{API}/scoring/models", headers=headers).json()["items"] == []
        assert client.get(f"{API}/scoring/scores", headers=headers).json()["items"] == []
        assert client.get(f"{API}/reports", headers=headers).json()["items"] == []
        assert client.get(f"{API}/dashboards", headers=headers).json()["items"] == []
    assert _snapshot(db) == before
    # The owner's own reads answer, so the 404s were about the users, not the ids.
    mine = org.headers["marketer"]
    for path in (
        "/scoring/models/{model_id}",
        "/scoring/scores/{score_id}",
        "/reports/{report_id}/run",
        "/dashboards/{dashboard_id}",
    ):
        url = API + re.sub(r"\{(\w+)\}", lambda m: str(ids[m.group(1)]), path)
        assert client.get(url, headers=mine).status_code == 200, url
