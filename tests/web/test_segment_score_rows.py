"""The criteria builder's lead score rows: built by clicking (server-side, no JavaScript),
saved as a ``score`` node, shown again as a row, and a scoring model the viewer may not read
refused beside its row."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from gatherly.scoring import service as scoring
from gatherly.segment.models import Segment
from tests import factories as f
from tests.web.conftest import client_sign_in, with_password

ANY_COUNTRY = [{"name": "Any", "points": 1, "contact": {"country": {"empty": False}}}]


def _post(client: TestClient, token: str, url: str, data: dict[str, Any]) -> Any:
    return client.post(url, data={"csrf": token, **data}, follow_redirects=False)


def _form(model_id: int, **extra: str) -> dict[str, str]:
    return {
        "action": "save",
        "name": "Warm leads",
        "scope": "business_unit",
        "match": "all",
        "row_count": "1",
        "row-0-kind": "score",
        "row-0-model": str(model_id),
        "row-0-score_test": "gte",
        "row-0-score_value": "50",
        **extra,
    }


def test_a_score_row_is_built_saved_and_shown_again(db: Session, client: TestClient) -> None:
    germany, france = f.bu(db, "Germany"), f.bu(db, "France")
    gustav = with_password(db, f.user(db, "gustav", germany, "Marketer"))
    with_password(db, f.user(db, "francoise", france, "Marketer"))
    model = scoring.create_model(
        db=db, principal=f.principal(db, gustav), name="Fit", conditions=ANY_COUNTRY
    )
    db.commit()

    # Francoise may not read gustav's model: refused beside the row, by number, not saved.
    token = client_sign_in(client, "francoise")
    refused = _post(client, token, "/segments", _form(model.id))
    assert refused.status_code == 422
    assert 'id="row-0-error"' in refused.text
    assert f"criteria.all[0].score.model: scoring model {model.id} not found" in refused.text
    assert f'<option value="{model.id}" selected>Scoring model {model.id}</option>' in refused.text
    assert ">Fit" not in refused.text
    assert db.scalar(select(Segment.id)) is None

    # Gustav adds a score row, picks his model and "scores between" (redrawn without saving).
    token = client_sign_in(client, "gustav")
    added = _post(client, token, "/segments", {"action": "add_score", "row_count": "0"})
    assert added.status_code == 200
    assert f'<option value="{model.id}">Fit (draft)</option>' in added.text
    redrawn = _post(
        client,
        token,
        "/segments",
        _form(model.id, action="update", **{"row-0-score_test": "between"}),
    )
    assert 'id="row-0-score_high"' in redrawn.text
    saved = _post(client, token, "/segments", _form(model.id))
    assert saved.status_code == 303, saved.text[:2000]
    made = db.scalars(select(Segment)).one()
    assert made.criteria == {"all": [{"score": {"model": model.id, "score": {"gte": 50}}}]}

    page = client.get(f"/segments/{made.id}/edit").text
    assert 'name="row-0-kind" value="score"' in page
    assert f'<option value="{model.id}" selected>Fit (draft)</option>' in page
    assert '<option value="gte" selected>scores at least</option>' in page
    assert 'name="row-0-score_value" value="50"' in page
    # The report builder's contact filter offers the same row.
    report = {"action": "add_score", "name": "R", "source": "contacts", "row_count": "0"}
    in_report = _post(client, token, "/reports/new", report)
    assert in_report.status_code == 200
    assert f'<option value="{model.id}">Fit (draft)</option>' in in_report.text
