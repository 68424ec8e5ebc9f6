"""The control API: members submit and delete leads, forms get new versions, reset."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from tests.linkedin_emulator import fixture as fx
from tests.linkedin_emulator.conftest import Emulator, owner_param

LISTING = f"/leadFormResponses?q=owner&owner={owner_param(fx.ACCOUNT)}&leadType=(leadType:SPONSORED)&count=100"


def _ids(client: httpx.Client) -> list[str]:
    return [r["id"] for r in client.get(LISTING).json()["elements"]]


def test_add_a_response(emulator: Emulator, keiko: httpx.Client) -> None:
    now_ms = emulator.control("GET", "/state").json()["now_ms"]
    added = emulator.control(
        "POST",
        "/responses",
        {"form": fx.WEBINAR, "answers": {"7": "Nina", "8": "nina@client.example"}},
    )
    assert added.status_code == 201
    body = added.json()
    assert body["leadType"] == "SPONSORED"
    assert body["versionedLeadGenFormUrn"].endswith(f"leadGenForm:{fx.WEBINAR},2)")
    assert now_ms <= body["submittedAt"] <= now_ms + 5000
    assert body["submitter"].startswith("urn:li:person:")
    assert _ids(keiko)[-1] == body["id"]  # the newest comes last
    assert keiko.get(f"/leadFormResponses/{body['id']}").json() == body

    given = emulator.control(
        "POST",
        "/responses",
        {
            "id": "fixed-id",
            "submittedAt": fx.BASE_MS + 1,
            "form": fx.WEBINAR,
            "version": 1,
            "testLead": True,
            "answers": {"1": "Old", "6": [2]},
        },
    )
    assert given.status_code == 201
    assert _ids(keiko)[1] == "fixed-id"  # between the first and the second response


def test_bad_changes_are_refused_with_their_path(emulator: Emulator) -> None:
    unknown_question = emulator.control(
        "POST", "/responses", {"form": fx.WEBINAR, "answers": {"1": "x"}}
    )
    assert unknown_question.status_code == 422
    assert unknown_question.json()["error"]["message"] == (
        "answers.1: not a question of form 7042 version 2"
    )
    duplicate = emulator.control(
        "POST", "/responses", {"id": fx.response_id(0), "form": fx.WEBINAR}
    )
    assert duplicate.json()["error"]["message"] == f"id: duplicate {fx.response_id(0)!r}"
    unknown_form = emulator.control("POST", "/responses", {"form": 1})
    assert unknown_form.json()["error"]["message"] == "form: unknown form 1"
    same_name = emulator.control(
        "POST",
        f"/forms/{fx.WEBINAR}/versions",
        {"questions": [{"questionId": 1, "name": "a", "question": "A"}] * 2},
    )
    assert same_name.json()["error"]["message"] == "questions[1].name: duplicate 'a'"


def test_delete_a_response(emulator: Emulator, keiko: httpx.Client) -> None:
    gone = fx.response_id(4)
    assert emulator.control("DELETE", f"/responses/{gone}").json() == {"deleted": gone}
    assert gone not in _ids(keiko)
    assert len(_ids(keiko)) == fx.SPONSORED_COUNT - 1
    assert keiko.get(f"/leadFormResponses/{gone}").status_code == 404
    assert emulator.control("DELETE", f"/responses/{gone}").status_code == 404
    assert emulator.control("GET", "/state").json()["deleted"] == [gone]


def test_a_new_form_version(emulator: Emulator, keiko: httpx.Client) -> None:
    created = emulator.control(
        "POST",
        f"/forms/{fx.WEBINAR}/versions",
        {
            "questions": [
                {"questionId": 1, "name": "email", "predefinedField": "EMAIL", "question": "Email"},
                {"questionId": 2, "name": "size", "question": "Team size", "options": [{"id": 1, "text": "1-10"}]},
            ]
        },
    )  # fmt: skip
    assert created.status_code == 201
    version = created.json()
    assert version["versionId"] == 3
    assert [q["questionId"] for q in version["content"]["questions"]] == [10, 11]
    assert version["content"]["consents"][0]["consentId"] == 1  # kept from the latest version
    latest = keiko.get(f"/leadForms/{fx.WEBINAR}").json()
    assert latest["versionId"] == 3
    assert latest["lastModified"] >= latest["created"]
    urn = quote(f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{fx.WEBINAR},3)", safe="")
    assert keiko.get(f"/versionedLeadGenForms/{urn}").json() == version
    answered = emulator.control(
        "POST", "/responses", {"form": fx.WEBINAR, "answers": {"10": "x@y.example", "11": [1]}}
    )
    assert answered.status_code == 201
    copied = emulator.control("POST", f"/forms/{fx.WEBINAR}/versions", {})
    assert [q["questionId"] for q in copied.json()["content"]["questions"]] == [12, 13]
    assert emulator.control("POST", "/forms/999/versions", {}).status_code == 404
    refused = emulator.control("POST", f"/forms/{fx.WEBINAR}/versions", {"questions": []})
    assert refused.status_code == 422
    assert refused.json()["error"]["message"].startswith("questions: ")


def test_reset_restores_the_fixture(emulator: Emulator, keiko: httpx.Client) -> None:
    emulator.control("DELETE", f"/responses/{fx.response_id(0)}").raise_for_status()
    emulator.control("POST", f"/forms/{fx.WEBINAR}/versions", {}).raise_for_status()
    emulator.control("POST", "/reset").raise_for_status()
    state = emulator.control("GET", "/state").json()
    assert state["deleted"] == []
    assert state["access_tokens"] == 0
    assert next(f for f in state["forms"] if f["id"] == fx.WEBINAR)["versions"] == [1, 2]
    assert keiko.get(LISTING).json()["code"] == "INVALID_ACCESS_TOKEN"  # tokens are gone too


def test_the_index_lists_the_routes(emulator: Emulator) -> None:
    routes = emulator.control("GET", "/").json()["routes"]
    assert "POST /_emulator/responses" in routes
    assert "DELETE /_emulator/responses/{id}" in routes
    assert "POST /_emulator/forms/{id}/versions" in routes
