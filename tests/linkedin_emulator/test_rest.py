"""The ``/rest`` Lead Sync surface: headers, shapes, owners, paging, the time range."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.linkedin_emulator import fixture as fx
from tests.linkedin_emulator.conftest import Emulator, owner_param

SPONSORED = "(leadType:SPONSORED)"


def _responses_url(owner: str = fx.ACCOUNT, lead_type: str = SPONSORED, extra: str = "") -> str:
    return f"/leadFormResponses?q=owner&owner={owner_param(owner)}&leadType={lead_type}{extra}"


def _months_ago(months: int) -> str:
    now = datetime.now(UTC)
    index = now.year * 12 + now.month - 1 - months
    return f"{index // 12}{index % 12 + 1:02d}"


def test_every_call_needs_a_token_and_the_version_headers(emulator: Emulator) -> None:
    token = emulator.login()["access_token"]
    url = f"{emulator.base_url}/rest/adAccountUsers?q=authenticatedUser"
    good = {
        "Authorization": f"Bearer {token}",
        "LinkedIn-Version": _months_ago(0),
        "X-Restli-Protocol-Version": "2.0.0",
    }
    assert emulator.http.get(url, headers=good).status_code == 200

    def answer(**headers: str | None) -> tuple[int, str]:
        sent = {k: v for k, v in {**good, **headers}.items() if v is not None}
        body = emulator.http.get(url, headers=sent).json()
        assert set(body) == {"status", "serviceErrorCode", "code", "message"}
        return body["status"], body["code"]

    assert answer(Authorization=None) == (401, "EMPTY_ACCESS_TOKEN")
    assert answer(Authorization="Bearer AQVforged") == (401, "INVALID_ACCESS_TOKEN")
    assert answer(**{"LinkedIn-Version": None}) == (400, "VERSION_MISSING")
    assert answer(**{"LinkedIn-Version": "2025-11"}) == (400, "INVALID_VERSION")
    assert answer(**{"LinkedIn-Version": "202513"}) == (400, "INVALID_VERSION")
    assert answer(**{"LinkedIn-Version": _months_ago(13)}) == (426, "NONEXISTENT_VERSION")
    assert answer(**{"LinkedIn-Version": _months_ago(-1)}) == (426, "NONEXISTENT_VERSION")
    assert answer(**{"X-Restli-Protocol-Version": None}) == (400, "ILLEGAL_ARGUMENT")
    assert emulator.http.get(url, headers={**good, "LinkedIn-Version": _months_ago(12)}).is_success
    with_patch = {**good, "LinkedIn-Version": f"{_months_ago(1)}.01"}
    assert emulator.http.get(url, headers=with_patch).is_success


def test_the_members_roles(keiko: httpx.Client, lars: httpx.Client) -> None:
    accounts = keiko.get("/adAccountUsers", params={"q": "authenticatedUser"}).json()
    assert accounts["elements"] == [
        {"account": fx.ACCOUNT, "user": f"urn:li:person:{fx.KEIKO}", "role": "ACCOUNT_MANAGER"},
        {"account": fx.OTHER_ACCOUNT, "user": f"urn:li:person:{fx.KEIKO}", "role": "ACCOUNT_MANAGER"},
    ]  # fmt: skip
    assert accounts["paging"]["total"] == 2
    assert keiko.get("/organizationAcls", params={"q": "roleAssignee"}).json()["elements"] == []
    acls = lars.get("/organizationAcls", params={"q": "roleAssignee", "role": "ADMINISTRATOR"})
    assert acls.json()["elements"] == [
        {
            "organization": fx.ORG,
            "roleAssignee": f"urn:li:person:{fx.LARS}",
            "role": "ADMINISTRATOR",
            "state": "APPROVED",
        }
    ]
    assert keiko.get("/adAccountUsers", params={"q": "nonsense"}).status_code == 400


def test_lead_forms_of_an_owner_in_linkedins_shape(keiko: httpx.Client) -> None:
    listed = keiko.get(f"/leadForms?q=owner&owner={owner_param(fx.ACCOUNT)}")
    assert listed.status_code == 200
    (form,) = listed.json()["elements"]
    assert form["id"] == fx.WEBINAR
    assert form["owner"] == {"sponsoredAccount": fx.ACCOUNT}
    assert form["versionId"] == 2  # the latest version
    assert form["state"] == "PUBLISHED"
    assert form["creationLocale"] == {"country": "US", "language": "en"}
    assert form["created"] == fx.BASE_MS - 24 * fx.HOUR
    assert form["lastModified"] == fx.BASE_MS + 15 * fx.HOUR
    assert form["hiddenFields"] == []
    assert [q["questionId"] for q in form["content"]["questions"]] == [7, 8, 9]
    first = form["content"]["questions"][0]
    assert first["predefinedField"] == "FIRST_NAME"
    assert first["question"] == {"localized": {"en_US": "First name"}}
    assert "textQuestionDetails" in first["questionDetails"]
    assert form["content"]["consents"] == [
        {"consentId": 1, "content": {"localized": {"en_US": "I agree to receive updates"}}, "required": False}
    ]  # fmt: skip
    assert keiko.get(f"/leadForms/{fx.WEBINAR}").json() == form


def test_a_versioned_form(keiko: httpx.Client) -> None:
    urn = quote(f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{fx.WEBINAR},1)", safe="")
    answer = keiko.get(f"/versionedLeadGenForms/{urn}")
    assert answer.status_code == 200
    version = answer.json()
    assert version["versionId"] == 1
    questions = version["content"]["questions"]
    assert [q["questionId"] for q in questions] == [1, 3, 6]
    assert questions[2]["questionDetails"] == {
        "multipleChoiceQuestionDetails": {
            "options": [
                {"id": 1, "text": {"localized": {"en_US": "AI"}}},
                {"id": 2, "text": {"localized": {"en_US": "Data"}}},
            ]
        }
    }
    assert "predefinedField" not in questions[2]
    missing = quote(f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{fx.WEBINAR},9)", safe="")
    assert keiko.get(f"/versionedLeadGenForms/{missing}").status_code == 404


def test_a_response_in_linkedins_shape(keiko: httpx.Client) -> None:
    answer = keiko.get(f"/leadFormResponses/{fx.response_id(2)}")
    assert answer.status_code == 200
    assert answer.json() == {
        "id": fx.response_id(2),
        "submittedAt": fx.BASE_MS + 2 * fx.HOUR,
        "leadType": "SPONSORED",
        "testLead": False,
        "owner": {"sponsoredAccount": fx.ACCOUNT},
        "submitter": "urn:li:person:P2",
        "versionedLeadGenFormUrn": f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{fx.WEBINAR},1)",
        "associatedEntity": {"associatedCreative": "urn:li:sponsoredCreative:99231"},
        "leadMetadata": {"sponsoredLeadMetadata": {"campaign": "urn:li:sponsoredCampaign:44120"}},
        "formResponse": {
            "answers": [
                {"questionId": 1, "answerDetails": {"textQuestionAnswer": {"answer": "Person2"}}},
                {"questionId": 3, "answerDetails": {"textQuestionAnswer": {"answer": "person2@client.example"}}},
                {"questionId": 6, "answerDetails": {"multipleChoiceAnswer": {"options": [1]}}},
            ],
            "consentResponses": [{"consentId": 1, "accepted": True}],
        },
    }  # fmt: skip
    assert keiko.get("/leadFormResponses/nope").status_code == 404
    assert keiko.get("/nothingHere").json()["code"] == "RESOURCE_NOT_FOUND"


def _walk(client: httpx.Client, url: str) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    while True:
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["paging"]["total"] == fx.SPONSORED_COUNT
        seen.extend(body["elements"])
        following = [link for link in body["paging"]["links"] if link["rel"] == "next"]
        if not following:
            return seen
        assert following[0]["href"].startswith("/rest/leadFormResponses?")
        url = following[0]["href"].removeprefix("/rest")


def test_paging_walks_every_response_once_in_order(keiko: httpx.Client) -> None:
    seen = _walk(keiko, _responses_url(extra="&start=0&count=7"))
    ids = [r["id"] for r in seen]
    assert ids == [fx.response_id(i) for i in range(fx.SPONSORED_COUNT)]
    keys = [(r["submittedAt"], r["id"]) for r in seen]
    assert keys == sorted(keys)
    assert seen[fx.TIE[0]]["submittedAt"] == seen[fx.TIE[1]]["submittedAt"]
    assert sum(r["testLead"] for r in seen) == 2
    first = keiko.get(_responses_url()).json()
    assert first["paging"]["start"] == 0
    assert first["paging"]["count"] == 10
    assert len(first["elements"]) == 10
    assert keiko.get(_responses_url()).json() == first  # a re-poll answers the same


def test_count_is_at_most_100(keiko: httpx.Client) -> None:
    assert keiko.get(_responses_url(extra="&count=100")).status_code == 200
    too_many = keiko.get(_responses_url(extra="&count=101"))
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "ILLEGAL_ARGUMENT"


def test_the_time_range_is_start_inclusive_end_exclusive(keiko: httpx.Client) -> None:
    start, end = fx.BASE_MS + 3 * fx.HOUR, fx.BASE_MS + 9 * fx.HOUR
    window = f"&submittedAtTimeRange=(start:{start},end:{end})&count=100"
    ids = [r["id"] for r in keiko.get(_responses_url(extra=window)).json()["elements"]]
    assert ids == [fx.response_id(i) for i in range(3, 9)]
    since = f"&submittedAtTimeRange=(start:{fx.BASE_MS + 20 * fx.HOUR})&count=100"
    ids = [r["id"] for r in keiko.get(_responses_url(extra=since)).json()["elements"]]
    assert ids == [fx.response_id(i) for i in range(20, fx.SPONSORED_COUNT)]
    bad = keiko.get(_responses_url(extra="&submittedAtTimeRange=(start:yesterday)"))
    assert bad.status_code == 400


def test_filters_lead_type_and_test_leads(lars: httpx.Client, keiko: httpx.Client) -> None:
    company = lars.get(_responses_url(fx.ORG, "(leadType:COMPANY)")).json()
    assert [r["id"] for r in company["elements"]] == ["company-0", "company-1", "company-2"]
    assert "leadMetadata" not in company["elements"][0]
    assert lars.get(_responses_url(fx.ORG)).json()["paging"]["total"] == 0
    tests = keiko.get(_responses_url(extra="&limitedToTestLeads=true")).json()["elements"]
    assert [r["id"] for r in tests] == [fx.response_id(0), fx.response_id(20)]
    urn = quote(f"urn:li:versionedLeadGenForm:(urn:li:leadGenForm:{fx.WEBINAR},2)", safe="")
    version_two = keiko.get(_responses_url(extra=f"&versionedLeadGenFormUrn={urn}&count=100"))
    assert len(version_two.json()["elements"]) == fx.SPONSORED_COUNT - 15
    missing = keiko.get(f"/leadFormResponses?q=owner&owner={owner_param(fx.ACCOUNT)}")
    assert missing.status_code == 400
    assert "leadType" in missing.json()["message"]


def test_access_denied_without_a_role_on_the_owner(keiko: httpx.Client) -> None:
    for url in (
        _responses_url(fx.ORG, "(leadType:COMPANY)"),
        f"/leadForms?q=owner&owner={owner_param(fx.ORG)}",
        f"/leadForms/{fx.NEWSLETTER}",
        "/leadFormResponses/company-0",
    ):
        denied = keiko.get(url)
        assert denied.status_code == 403, url
        body = denied.json()
        assert body["code"] == "ACCESS_DENIED"
        assert body["message"].startswith("Not enough permissions to access: ")


@pytest.mark.parametrize(
    "owner",
    [
        f"(sponsoredAccount:{fx.ACCOUNT})",  # the URN's colons not encoded
        quote(f"(sponsoredAccount:{fx.ACCOUNT})", safe=""),  # the structure encoded too
        f"(account:{quote(fx.ACCOUNT, safe='')})",
        quote(fx.ACCOUNT, safe=""),
    ],
)
def test_owner_must_be_restli_2(keiko: httpx.Client, owner: str) -> None:
    answer = keiko.get(f"/leadForms?q=owner&owner={owner}")
    assert answer.status_code == 400
    assert answer.json()["code"] == "ILLEGAL_ARGUMENT"
