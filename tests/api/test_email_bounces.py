"""The bounce webhook (issue 15): a sending service posts bounces and complaints with
the webhook's own token, or an MTA pipes a raw report; each is recorded once against its
delivery, and hard bounces and complaints suppress the address."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.email import delivery
from gatherly.email.models import EmailInteraction, Suppression
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.api.test_email_sends import SENDS, _list_of, _people, _ready_message, _settings
from tests.cli.test_email_sends_cli import dsn
from tests.smtp_sink import smtp_sink

WEBHOOK = f"{API}/email/webhook"


def _counted(name: str, **labels: str) -> float:
    """A Prometheus counter's value in this process (tests compare two readings)."""
    return REGISTRY.get_sample_value(f"gatherly_email_{name}_total", labels) or 0.0


def test_the_webhook_records_each_bounce_and_complaint_once(
    client: TestClient,
    db: Session,
    session_factory: sessionmaker[Session],
    org: Org,
    database_url: str,
    tmp_path: Path,
) -> None:
    headers = org.headers["marketer"]
    message_id = _ready_message(client, headers)
    list_id = _list_of(db, org, "marketer", _people(db, org, "ada@example.com", "bob@example.com"))
    send_id = client.post(
        SENDS, json={"message_id": message_id, "list_ids": [list_id]}, headers=headers
    ).json()["id"]
    counted = _counted("deliveries", outcome="sent")
    with smtp_sink() as sink:
        delivery.run_send(session_factory, _settings(database_url, sink, tmp_path), send_id=send_id)
    sent = {c.rcpt_tos[0]: c.message["Message-ID"] for c in sink.caught}
    assert _counted("deliveries", outcome="sent") - counted == 2  # the metrics (issue 20)
    bounced = {
        kind: _counted("bounces", kind=kind, source="webhook")
        for kind in ("soft", "hard", "complaint")
    }

    events = {
        "events": [
            {
                "type": "bounce",
                "email": "ada@example.com",
                "bounce_type": "soft",
                "detail": "421 later",
            },
            {"type": "complaint", "email": "Ada@Example.com"},
            {"type": "bounce", "email": "stranger@example.com"},
        ]
    }
    # Closed until a token is configured; then only that token opens it (not a user's).
    assert_error(client.post(WEBHOOK, json=events, headers=org.headers["admin"]), 401)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    client.app.state.settings = settings.model_copy(  # type: ignore[attr-defined]
        update={"email_webhook_token": SecretStr("hook-secret")}
    )
    try:
        for wrong in ({}, org.headers["admin"], {"Authorization": "Bearer hook-secre"}):
            refused = assert_error(client.post(WEBHOOK, json=events, headers=wrong), 401)
            assert "webhook token" in refused["message"]
        hook = {"Authorization": "Bearer hook-secret"}
        done = client.post(WEBHOOK, json=events, headers=hook)
        assert done.status_code == 200, done.text
        assert done.json() == {
            "recorded": 2,
            "repeated": 0,
            "unmatched": 1,
            "suppressed": 2,
            "unreadable": 0,
            "unsubscribed": 0,
        }
        again = client.post(WEBHOOK, json=events, headers=hook).json()
        assert (again["recorded"], again["repeated"], again["suppressed"]) == (0, 2, 0)
        for kind, recorded in (("soft", 1), ("hard", 0), ("complaint", 1)):  # once each
            assert _counted("bounces", kind=kind, source="webhook") - bounced[kind] == recorded
        report = client.post(
            f"{WEBHOOK}/report",
            content=dsn("bob@example.com", sent["bob@example.com"]),
            headers={**hook, "Content-Type": "message/rfc822"},
        )
        assert report.json()["recorded"] == 1
        # A complaint about Bob that names Ada's message is Bob's, not Ada's.
        mixed = {
            "type": "complaint",
            "email": "bob@example.com",
            "message_id": sent["ada@example.com"],
        }
        assert client.post(WEBHOOK, json={"events": [mixed]}, headers=hook).json()["recorded"] == 1
        assert_error(client.post(f"{WEBHOOK}/report", content=b"", headers=hook), 422, "body")
        assert_error(client.post(WEBHOOK, json={"events": []}, headers=hook), 422, "events")
        assert_error(
            client.post(
                WEBHOOK, json={"events": [{"type": "read", "email": "a@b.example"}]}, headers=hook
            ),
            422,
        )
    finally:
        client.app.state.settings = settings  # type: ignore[attr-defined]
    db.expire_all()
    found = db.execute(
        select(EmailInteraction.kind, EmailInteraction.detail)
        .where(EmailInteraction.kind != "delivered")
        .order_by(EmailInteraction.id)
    ).all()
    assert [(k, d.get("type", None), d["source"]) for k, d in found] == [
        ("bounced", "soft", "webhook"),
        ("complained", None, "webhook"),
        ("bounced", "hard", "webhook"),
        ("complained", None, "webhook"),
    ]
    complained = db.scalars(
        select(EmailInteraction.contact_id).where(EmailInteraction.kind == "complained")
    ).all()
    assert len(set(complained)) == 2  # Ada's own, and Bob's
    suppressed = db.execute(
        select(Suppression.email, Suppression.reason).order_by(Suppression.id)
    ).all()
    assert [tuple(r) for r in suppressed] == [
        ("ada@example.com", "complaint"),
        ("stranger@example.com", "hard_bounce"),
        ("bob@example.com", "hard_bounce"),
        ("bob@example.com", "complaint"),
    ]
