"""Email messages and content settings through the API (issue 15, first part): the
content-setting defaults per business unit (B14), a message's life from draft to ready,
preview as a contact, sanitising, and who may read, use and change what."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gatherly.core import audit
from gatherly.email import service as email_service
from gatherly.email.models import ContentSetting, EmailMessage
from gatherly.org import service as org_service
from tests.api.conftest import Org
from tests.api.helpers import API, assert_error
from tests.web.conftest import text_of

SETTINGS = f"{API}/email/content-settings"
MESSAGES = f"{API}/email/messages"
GOOD_HTML = (
    "<style>p { color: #123456 }</style>"
    "<p>Hello {{ contact.first_name | default('there') }},</p>"
    '<p><a href="https://example.com/agenda?x=1&amp;y=2">See the agenda</a></p>'
    '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    "<p>{{ postal_address }}</p>"
)


def _setting(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Sales EU", "sender_email": "News@Sales.Example", **fields}
    created = client.post(SETTINGS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _message(client: TestClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"name": "Autumn invite", "subject": "Hi {{ contact.first_name }}", **fields}
    created = client.post(MESSAGES, json=body, headers=headers)
    assert created.status_code == 201, created.text
    return dict(created.json())


def _scoping(db: Session, on: bool) -> None:
    org_service.set_feature(db=db, name=org_service.BU_SCOPING, enabled=on, by_user_id=None)
    db.commit()


def test_a_message_goes_from_draft_to_ready_once_every_check_passes(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["marketer"]
    message = _message(
        client,
        headers,
        subject="",
        html='<p>Hi {{ contatc.first_name }}</p><a href="www.example.com">site</a>',
    )
    assert message["state"] == "draft"
    url = f"{MESSAGES}/{message['id']}"
    checked = client.get(f"{url}/check", headers=headers).json()
    assert checked["ready"] is False
    said = {(p["field"], p["message"]) for p in checked["problems"]}
    assert ("subject", "a message needs a subject") in said
    assert any(f == "content_setting_id" and "no content setting" in m for f, m in said)
    assert any("contatc" in m for _f, m in said)
    refused = assert_error(client.post(f"{url}/ready", headers=headers), 422, "subject")
    assert "more: see the check" in refused["message"]

    setting = _setting(client, headers)  # no postal address yet
    fixed = {"subject": "Hi {{ contact.first_name }}", "html": GOOD_HTML.replace("agenda?", "x?")}
    fixed["content_setting_id"] = setting["id"]
    assert client.patch(url, json=fixed, headers=headers).status_code == 200
    problems = client.get(f"{url}/check", headers=headers).json()["problems"]
    assert [p["field"] for p in problems] == ["content_setting_id"]
    assert "no postal address" in problems[0]["message"]
    client.patch(
        f"{SETTINGS}/{setting['id']}",
        json={"postal_address": "Hauptstr. 1, Berlin"},
        headers=headers,
    )
    done = client.post(f"{url}/ready", headers=headers)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "ready"
    assert done.json()["checked_at"].endswith(("Z", "+00:00"))
    # Changing a ready message makes it a draft again, to be checked anew.
    again = client.patch(url, json={"preheader": "Seats are limited"}, headers=headers).json()
    assert (again["state"], again["checked_at"]) == ("draft", None)


def test_links_must_be_http_addresses_a_recipient_can_follow(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="1 Main St")
    for link, why in (
        ("www.example.com", "www.example.com is not an http(s) address"),
        ("https:///path", "https:///path has no host"),
        ("//example.com/x", "//example.com/x is not an http(s) address"),
        ("{{ contact.custom.site }}", "(empty) is not an http(s) address"),
    ):
        html = f'<a href="{link}">x</a><a href="{{{{ unsubscribe_url }}}}">u</a>'
        message = _message(client, headers, html=html, content_setting_id=setting["id"])
        problems = client.get(f"{MESSAGES}/{message['id']}/check", headers=headers).json()
        assert [p["message"] for p in problems["problems"]] == [
            f"a link cannot be followed: {why}"
        ], link


def test_html_is_sanitised_when_saved_and_again_when_rendered(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="1 Main St")
    html = (
        '<p onclick="steal()">Hi</p><script>steal()</script><a href="javascript:steal()">x</a>'
        "<iframe src='https://evil.example'></iframe>{{ '<script>late()</script>' | safe }}"
        '<a href="{{ unsubscribe_url }}">u</a>'
    )
    message = _message(client, headers, html=html, content_setting_id=setting["id"])
    stored = message["html"]
    for gone in ("onclick", "<script>steal", "javascript:", "iframe"):
        assert gone not in stored, gone
    shown = client.get(
        f"{MESSAGES}/{message['id']}/preview",
        params={"contact_id": org.contacts["marketer"]},
        headers=headers,
    ).json()["html"]
    assert "<script" not in shown  # | safe cannot bring it back
    assert "late()" not in shown
    assert "<p>Hi</p>" in shown


def test_preview_personalises_for_a_readable_contact_only(client: TestClient, org: Org) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="Hauptstr. 1", sender_name="Sales")
    message = _message(
        client,
        headers,
        html=GOOD_HTML + "<p>{{ contact.company }} · {{ sender.name }}</p>",
        preheader="For {{ contact.full_name }}",
        content_setting_id=setting["id"],
    )
    url = f"{MESSAGES}/{message['id']}/preview"
    mine = client.get(url, params={"contact_id": org.contacts["marketer"]}, headers=headers)
    assert mine.status_code == 200, mine.text
    shown = mine.json()
    assert shown["subject"] == "Hi Marketer"
    assert shown["preheader"] == "For Marketer Owner-marketer"
    assert 'style="color: #123456;"' in shown["html"]  # the stylesheet is inlined
    assert "marketer GmbH · Sales" in shown["html"]
    assert "Hauptstr. 1" in text_of(shown["html"])
    assert "[See the agenda](https://example.com/agenda?x=1&y=2)" in shown["text"]
    assert "Hello Marketer," in shown["text"]
    hidden = client.get(url, params={"contact_id": org.contacts["support"]}, headers=headers)
    assert_error(hidden, 404, "contact_id")
    missing = client.get(url, headers=headers)
    assert_error(missing, 422, "contact_id")


def test_a_message_in_another_business_unit_is_not_found_nor_counted(
    client: TestClient, org: Org
) -> None:
    theirs = _message(client, org.headers["support_assistant"])
    their_setting = _setting(client, org.headers["support_assistant"])
    headers = org.headers["marketer"]
    for url in (
        f"{MESSAGES}/{theirs['id']}",
        f"{MESSAGES}/{theirs['id']}/check",
        f"{SETTINGS}/{their_setting['id']}",
    ):
        assert_error(client.get(url, headers=headers), 404, "id")
    assert_error(
        client.patch(f"{MESSAGES}/{theirs['id']}", json={"name": "Mine"}, headers=headers), 404
    )
    assert_error(client.delete(f"{MESSAGES}/{theirs['id']}", headers=headers), 404)
    assert_error(client.post(f"{MESSAGES}/{theirs['id']}/copy", headers=headers), 404)
    assert_error(client.post(f"{MESSAGES}/{theirs['id']}/ready", headers=headers), 404)
    # Nor may a message of one's own use another BU's content setting.
    assert_error(
        client.post(
            MESSAGES,
            json={"name": "x", "content_setting_id": their_setting["id"]},
            headers=headers,
        ),
        404,
        "content_setting_id",
    )
    listed = client.get(MESSAGES, headers=headers).json()["items"]
    assert theirs["id"] not in [m["id"] for m in listed]
    assert client.get(f"{MESSAGES}/{theirs['id']}", headers=org.headers["admin"]).status_code == 200


def test_a_reader_may_not_change_and_no_role_may_not_read(
    client: TestClient, db: Session, org: Org
) -> None:
    message = _message(client, org.headers["marketer"])
    assert client.get(MESSAGES, headers=org.headers["nobody"]).json()["items"] == []
    assert_error(client.get(f"{MESSAGES}/{message['id']}", headers=org.headers["nobody"]), 404)
    # The assistant works at user level: the marketer's message is not theirs to see.
    assert_error(
        client.patch(
            f"{MESSAGES}/{message['id']}", json={"name": "x"}, headers=org.headers["assistant"]
        ),
        404,
    )
    db.expire_all()
    assert db.get(EmailMessage, message["id"]).name == "Autumn invite"  # type: ignore[union-attr]


def test_business_unit_defaults_only_while_scoping_is_on_and_one_per_unit(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    first = _setting(client, headers, postal_address="1 Main St")
    second = _setting(client, headers, name="Second", postal_address="2 Main St")
    default = {"default_for": "business_unit"}
    refused = assert_error(
        client.put(f"{SETTINGS}/{first['id']}/default", json=default, headers=headers),
        422,
        "default_for",
    )
    assert "only while business unit scoping is on" in refused["message"]
    _scoping(db, True)
    made = client.put(f"{SETTINGS}/{first['id']}/default", json=default, headers=headers)
    assert made.json()["default_for"] == "business_unit"
    moved = client.put(f"{SETTINGS}/{second['id']}/default", json=default, headers=headers)
    assert moved.status_code == 200
    assert client.get(f"{SETTINGS}/{first['id']}", headers=headers).json()["default_for"] is None
    # A message with no content setting of its own takes its business unit's default.
    message = _message(client, headers, html=GOOD_HTML)
    checked = client.get(f"{MESSAGES}/{message['id']}/check", headers=headers).json()
    assert (checked["ready"], checked["content_setting_id"]) == (True, second["id"])
    # A marketer (business-unit level) may not make the organisation's default.
    org_default = {"default_for": "organization"}
    assert_error(
        client.put(f"{SETTINGS}/{first['id']}/default", json=org_default, headers=headers),
        403,
        "default_for",
    )
    # The database holds the rule too: a second default for the same BU is refused.
    db.expire_all()
    row = db.get(ContentSetting, first["id"])
    assert row is not None
    row.default_for = "business_unit"
    with pytest.raises(IntegrityError):
        db.commit()
    db.rollback()
    trail = audit.search(db, audit.Filters(action="email_content_setting.default"))
    # Made, then moved: the new default and the one it replaced are both recorded.
    assert sorted(str(e.after["default_for"]) for e in trail.items) == [
        "None",
        "business_unit",
        "business_unit",
    ]


def test_the_organisation_default_applies_when_no_business_unit_default_does(
    client: TestClient, db: Session, org: Org
) -> None:
    admin = org.headers["orgadmin"]
    organisation = _setting(client, admin, name="Org", postal_address="HQ")
    made = client.put(
        f"{SETTINGS}/{organisation['id']}/default",
        json={"default_for": "organization"},
        headers=admin,
    )
    assert made.status_code == 200, made.text
    headers = org.headers["marketer"]
    unit = _setting(client, headers, name="Sales", postal_address="Sales St")
    message = _message(client, headers, html=GOOD_HTML)
    check = f"{MESSAGES}/{message['id']}/check"
    assert client.get(check, headers=headers).json()["content_setting_id"] == organisation["id"]
    _scoping(db, True)
    client.put(
        f"{SETTINGS}/{unit['id']}/default", json={"default_for": "business_unit"}, headers=headers
    )
    assert client.get(check, headers=headers).json()["content_setting_id"] == unit["id"]
    _scoping(db, False)  # scoping off: business unit defaults no longer apply
    assert client.get(check, headers=headers).json()["content_setting_id"] == organisation["id"]
    db.expire_all()
    stored = db.get(EmailMessage, message["id"])
    assert stored is not None
    assert email_service.content_setting_for(db=db, message=stored).id == organisation["id"]  # type: ignore[union-attr]


def test_a_content_setting_in_use_cannot_be_deleted_and_a_copy_is_a_new_draft(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="1 Main St")
    message = _message(client, headers, html=GOOD_HTML, content_setting_id=setting["id"])
    assert_error(client.delete(f"{SETTINGS}/{setting['id']}", headers=headers), 409, "id")
    copied = client.post(f"{MESSAGES}/{message['id']}/copy", headers=headers)
    assert copied.status_code == 201
    assert copied.json()["name"] == "Copy of Autumn invite"
    assert copied.json()["html"] == message["html"]
    assert copied.json()["state"] == "draft"
    for row in (copied.json(), message):
        assert client.delete(f"{MESSAGES}/{row['id']}", headers=headers).status_code == 204
    assert client.delete(f"{SETTINGS}/{setting['id']}", headers=headers).status_code == 204
    db.expire_all()
    assert db.scalars(select(EmailMessage)).all() == []


BAD: list[tuple[str, dict[str, Any], str]] = [
    (SETTINGS, {"name": "x", "sender_email": "not-an-address"}, "sender_email"),
    (SETTINGS, {"name": "", "sender_email": "a@b.example"}, "name"),
    (SETTINGS, {"name": "x"}, "sender_email"),
    (SETTINGS, {"name": "x", "sender_email": "a@b.example", "reply_to": "@"}, "reply_to"),
    (
        SETTINGS,
        {"name": "x", "sender_email": "a@b.example", "subscription_centre_url": "ftp://x"},
        "subscription_centre_url",
    ),
    (MESSAGES, {"name": "x", "html": "<p>{% if %}</p>"}, "html"),
    (MESSAGES, {"name": "x", "subject": "{{ contact.first_name "}, "subject"),
    (MESSAGES, {"name": "x", "html": "x" * 500_001}, "html"),
    (MESSAGES, {"name": "x", "event_id": 999999}, "event_id"),
    (MESSAGES, {"name": "x", "content_setting_id": 999999}, "content_setting_id"),
    (MESSAGES, {"name": "x", "colour": "red"}, "colour"),
]


def test_bad_input_is_refused_naming_the_field_and_saves_nothing(
    client: TestClient, db: Session, org: Org
) -> None:
    headers = org.headers["marketer"]
    for url, body, field in BAD:
        error = assert_error(
            client.post(url, json=body, headers=headers),
            422
            if field
            not in (
                "event_id",
                "content_setting_id",
            )
            else 404,
            field,
        )
        assert error["message"], body
    syntax = client.post(MESSAGES, json={"name": "x", "html": "<p>\n{% if %}</p>"}, headers=headers)
    assert syntax.json()["error"]["message"].startswith("line 2: ")
    db.expire_all()
    assert db.scalars(select(EmailMessage)).all() == []
    assert db.scalars(select(ContentSetting)).all() == []


def test_the_unsubscribe_link_must_be_a_link_every_recipient_sees(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="1 Main St")
    for html in (
        "{% if false %}<a href='{{ unsubscribe_url }}'>u</a>{% endif %}<p>Hi</p>",
        "<p>Unsubscribe at {{ unsubscribe_url }}</p>",
        "<p>Hi</p>",
    ):
        message = _message(client, headers, html=html, content_setting_id=setting["id"])
        problems = client.get(f"{MESSAGES}/{message['id']}/check", headers=headers).json()
        assert [p["message"] for p in problems["problems"]] == [
            "a message needs an unsubscribe link that every recipient sees: "
            '<a href="{{ unsubscribe_url }}">Unsubscribe</a>'
        ], html
    # A template tag survives saving as written.
    saved = _message(
        client,
        headers,
        html='{% if 1 < 2 %}<a href="{{ unsubscribe_url }}">u</a>{% endif %}',
        content_setting_id=setting["id"],
    )
    assert saved["html"].startswith("{% if 1 < 2 %}")
    ready = client.get(f"{MESSAGES}/{saved['id']}/check", headers=headers).json()
    assert ready["ready"] is True, ready


def test_only_a_real_change_makes_a_ready_message_a_draft_again(
    client: TestClient, org: Org
) -> None:
    headers = org.headers["marketer"]
    setting = _setting(client, headers, postal_address="1 Main St")
    message = _message(client, headers, html=GOOD_HTML, content_setting_id=setting["id"])
    url = f"{MESSAGES}/{message['id']}"
    assert client.post(f"{url}/ready", headers=headers).json()["state"] == "ready"
    same = {k: message[k] for k in ("name", "subject", "html", "content_setting_id")}
    assert client.patch(url, json=same, headers=headers).json()["state"] == "ready"
    assert client.patch(url, json={"name": "Renamed"}, headers=headers).json()["state"] == "draft"


def test_defaults_need_a_role_that_reaches_everyone_they_decide_for(
    client: TestClient, db: Session, org: Org
) -> None:
    _scoping(db, True)
    # A user-level role may not decide the sender of its whole business unit.
    own = _setting(client, org.headers["assistant"], sender_email="mine@private.example")
    assert_error(
        client.put(
            f"{SETTINGS}/{own['id']}/default",
            json={"default_for": "business_unit"},
            headers=org.headers["assistant"],
        ),
        403,
        "default_for",
    )
    # The organisation's default, once set, is changed only with organization-level write.
    theirs = _setting(client, org.headers["marketer"], postal_address="Sales St")
    made = client.put(
        f"{SETTINGS}/{theirs['id']}/default",
        json={"default_for": "organization"},
        headers=org.headers["orgadmin"],
    )
    assert made.status_code == 200, made.text
    url = f"{SETTINGS}/{theirs['id']}"
    for body in ({"default_for": None}, {"default_for": "business_unit"}):
        assert_error(client.put(f"{url}/default", json=body, headers=org.headers["marketer"]), 403)
    assert_error(client.delete(url, headers=org.headers["marketer"]), 403, "id")
    assert client.get(url, headers=org.headers["marketer"]).json()["default_for"] == (
        "organization"
    )


def test_refusing_to_delete_a_setting_in_use_counts_only_the_messages_one_may_see(
    client: TestClient, org: Org
) -> None:
    setting = _setting(client, org.headers["marketer"], name="Shared", postal_address="1 St")
    _message(client, org.headers["orgadmin"], name="Support's", content_setting_id=setting["id"])
    refused = assert_error(
        client.delete(f"{SETTINGS}/{setting['id']}", headers=org.headers["marketer"]), 409, "id"
    )
    assert "(0 of them you can see)" in refused["message"]
    assert "Support's" not in refused["message"]
