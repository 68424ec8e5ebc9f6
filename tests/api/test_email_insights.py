"""Insights (issue 15, B11): counts in full for whoever may read the message; the detail
names only contacts the viewer may read — every other row is anonymous, in the API and
the CSV alike."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.contact.schemas import OwnerRef
from gatherly.core.db import utcnow
from gatherly.email import delivery
from gatherly.email.models import EmailDelivery
from gatherly.segment import service as segment_service
from tests import factories as f
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.api.test_email_sends import SENDS, _ready_message, _settings
from tests.api.test_email_tracking import BROWSER, _links
from tests.smtp_sink import smtp_sink

INSIGHTS = f"{API}/email/insights"


def test_a_bu_user_sees_opened_by_5_and_3_named_contacts_of_their_bu_and_2_anonymous(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    admin = org.headers["admin"]
    # The message belongs to the Sales marketer (a business-unit-level user); the send
    # goes, as the administrator, to three Sales contacts and two of Support.
    message_id = _ready_message(
        client, admin, owner={"type": "user", "id": org.users["marketer"].id}
    )
    sales = [
        f.contact(
            db, org.users["marketer"], email=f"sales{i}@example.com", first_name=f"Sales{i}"
        ).id
        for i in range(3)
    ]
    support = [
        f.contact(
            db,
            org.users["support_assistant"],
            email=f"support{i}@example.com",
            first_name=f"Support{i}",
        ).id
        for i in range(2)
    ]
    principal = f.principal(db, org.users["admin"])
    mlist = segment_service.create_list(
        db=db,
        principal=principal,
        name="All five",
        owner=OwnerRef(type="user", id=org.users["admin"].id),
    )
    segment_service.add_to_list(
        db=db, principal=principal, list_id=mlist.id, contact_ids=sales + support
    )
    db.commit()
    send_id = client.post(
        SENDS,
        json={
            "message_id": message_id,
            "list_ids": [mlist.id],
            "owner": {"type": "user", "id": org.users["marketer"].id},
        },
        headers=admin,
    ).json()["id"]
    with smtp_sink() as sink:
        settings = _settings(database_url, sink, tmp_path)
        assert delivery.run_send(session_factory, settings, send_id=send_id).sent == 5
    for row in db.scalars(select(EmailDelivery)):
        row.sent_at = utcnow() - timedelta(hours=2)
    db.commit()
    links = {c.rcpt_tos[0]: _links(c) for c in sink.caught}
    for address, found in links.items():
        client.get(found["pixel"], headers={"User-Agent": BROWSER})
        if address in ("sales0@example.com", "support1@example.com"):
            client.get(found["clicks"][0], headers={"User-Agent": BROWSER})
    client.get(
        links["sales1@example.com"]["pixel"], headers={"User-Agent": "Mozilla/5.0 GoogleImageProxy"}
    )

    marketer = org.headers["marketer"]
    for params in ({"message_id": message_id}, {"send_id": send_id}):
        answer = client.get(INSIGHTS, params=params, headers=marketer)
        assert answer.status_code == 200, answer.text
        counts = answer.json()
        assert (counts["recipients"], counts["sent"], counts["delivered"]) == (5, 5, 5)
        assert (counts["opened"], counts["opens"], counts["machine_opens"]) == (5, 5, 1)
        assert (counts["clicked"], counts["clicks"]) == (2, 2)
        assert counts["open_rate"] == 1.0
        assert counts["click_rate"] == 0.4
        assert counts["links"] == [
            # grouped without the query, which personalised links fill with the person's data
            {"url": "https://example.com/agenda", "clicks": 2, "unique": 2}
        ]
        assert counts["bucket"] == "hour"
        assert sum(b["opens"] for b in counts["timeline"]) == 5
        assert counts["timeline"][0]["start"].endswith("Z")

    opened = client.get(
        f"{INSIGHTS}/people", params={"message_id": message_id, "kind": "opened"}, headers=marketer
    )
    assert opened.status_code == 200, opened.text
    rows = opened.json()["items"]
    named = [r for r in rows if not r["anonymous"]]
    anonymous = [r for r in rows if r["anonymous"]]
    assert sorted(r["email"] for r in named) == [
        "sales0@example.com",
        "sales1@example.com",
        "sales2@example.com",
    ]
    assert len(anonymous) == 2
    for r in anonymous:
        assert (r["contact_id"], r["email"], r["name"]) == (None, None, "Anonymous contact")
    # Nothing in the answer tells who the anonymous two are.
    for contact_id in support:
        assert not re.search(
            rf"\b{contact_id}\b",
            str(
                [
                    {k: v for k, v in r.items() if k not in ("first_at", "last_at", "times")}
                    for r in anonymous
                ]
            ),
        )
    assert "support" not in opened.text.lower()
    assert [r["machine_only"] for r in named] == [False, False, False]

    clicked = client.get(
        f"{INSIGHTS}/people",
        params={"send_id": send_id, "kind": "clicked"},
        headers=marketer,
    ).json()["items"]
    assert [(r["anonymous"], r["urls"]) for r in clicked] == [
        (False, ["https://example.com/agenda?x=1&y=2"]),
        (True, []),  # the link a person clicked may carry who they are: not shown
    ]
    assert all(r["first_at"].endswith(":00Z") for r in clicked if r["anonymous"])
    export = client.get(
        f"{INSIGHTS}/people.csv", params={"send_id": send_id, "kind": "clicked"}, headers=marketer
    )
    assert export.status_code == 200
    assert (
        export.headers["content-disposition"]
        == f'attachment; filename="send-{send_id}-clicked.csv"'
    )
    table = list(csv.DictReader(io.StringIO(export.text)))
    assert sorted((r["email"], r["name"]) for r in table) == [
        ("", "Anonymous contact"),
        ("sales0@example.com", "Sales0"),
    ]
    assert "support" not in export.text.lower()
    # The administrator may read every contact: nobody is anonymous to them.
    everyone = client.get(
        f"{INSIGHTS}/people", params={"message_id": message_id, "kind": "opened"}, headers=admin
    ).json()
    assert not any(r["anonymous"] for r in everyone["items"])

    # Who may not read the message (or the send) sees no count at all.
    for outsider in ("eu_marketer", "support_assistant", "nobody"):
        h = org.headers[outsider]
        assert_error(client.get(INSIGHTS, params={"message_id": message_id}, headers=h), 404, "id")
        assert_error(client.get(INSIGHTS, params={"send_id": send_id}, headers=h), 404, "id")
        assert_error(
            client.get(
                f"{INSIGHTS}/people", params={"message_id": message_id, "kind": "opened"}, headers=h
            ),
            404,
            "id",
        )
        assert_error(
            client.get(
                f"{INSIGHTS}/people.csv",
                params={"message_id": message_id, "kind": "opened"},
                headers=h,
            ),
            404,
            "id",
        )
    assert_error(client.get(INSIGHTS, headers=marketer), 422, "message_id")
    assert_error(
        client.get(
            INSIGHTS, params={"message_id": message_id, "send_id": send_id}, headers=marketer
        ),
        422,
        "message_id",
    )
    assert_error(
        client.get(
            f"{INSIGHTS}/people",
            params={"message_id": message_id, "kind": "read"},
            headers=marketer,
        ),
        422,
        "kind",
    )
