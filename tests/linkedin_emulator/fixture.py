"""A small LinkedIn-emulator fixture for the tests: two members, two ad accounts and an
organization, three forms (one with two versions) and 30 responses an hour apart."""

from __future__ import annotations

from typing import Any

APP = "test-app"
SECRET = "s3cret"
REDIRECT = "http://127.0.0.1:9/linkedin/callback"
KEIKO, LARS = "AbC123", "Lq7Rz0"
ACCOUNT = "urn:li:sponsoredAccount:508123456"
OTHER_ACCOUNT = "urn:li:sponsoredAccount:508777001"
ORG = "urn:li:organization:2414183"
WEBINAR, GUIDE, NEWSLETTER = 7042, 7043, 7044
BASE_MS = 1_793_000_000_000  # 2026-10-26T...Z
HOUR = 3_600_000
SPONSORED_COUNT = 25  # responses of ACCOUNT (SPONSORED), two of them test leads
TIE = (5, 6)  # these two responses share a submittedAt


def _version_one() -> dict[str, Any]:
    return {
        "versionId": 1,
        "questions": [
            {
                "questionId": 1,
                "name": "firstName",
                "predefinedField": "FIRST_NAME",
                "question": "First name",
            },
            {
                "questionId": 3,
                "name": "email",
                "predefinedField": "EMAIL",
                "question": "Email address",
            },
            {
                "questionId": 6,
                "name": "interest",
                "question": "What interests you?",
                "options": [{"id": 1, "text": "AI"}, {"id": 2, "text": "Data"}],
            },
        ],
        "consents": [{"consentId": 1, "text": "I agree to receive updates", "required": False}],
    }


def _version_two() -> dict[str, Any]:
    return {
        "versionId": 2,
        "created": BASE_MS + 15 * HOUR,
        "questions": [
            {"questionId": 7, "name": "firstName", "predefinedField": "FIRST_NAME", "question": "First name"},
            {"questionId": 8, "name": "email", "predefinedField": "EMAIL", "question": "Email address"},
            {"questionId": 9, "name": "company", "predefinedField": "COMPANY_NAME", "question": "Company"},
        ],
        "consents": [{"consentId": 1, "text": "I agree to receive updates", "required": False}],
    }  # fmt: skip


def response_id(i: int) -> str:
    """The id of the i-th sponsored response (sorted order equals index order)."""
    return f"00000000-0000-4000-8000-{i:012d}"


def build() -> dict[str, Any]:
    """The fixture (a fresh copy each call)."""
    responses: list[dict[str, Any]] = []
    for i in range(SPONSORED_COUNT):
        at = BASE_MS + i * HOUR
        if i == TIE[1]:
            at = BASE_MS + TIE[0] * HOUR
        version = 1 if i < 15 else 2
        answers: dict[str, Any] = (
            {"1": f"Person{i}", "3": f"person{i}@client.example", "6": [1 + i % 2]}
            if version == 1
            else {"7": f"Person{i}", "8": f"person{i}@client.example", "9": "Fabrikam"}
        )
        responses.append(
            {
                "id": response_id(i),
                "submittedAt": at,
                "leadType": "SPONSORED",
                "testLead": i in (0, 20),
                "owner": {"sponsoredAccount": ACCOUNT},
                "submitter": f"urn:li:person:P{i}",
                "form": WEBINAR,
                "version": version,
                "campaign": "urn:li:sponsoredCampaign:44120",
                "creative": "urn:li:sponsoredCreative:99231",
                "answers": answers,
                "consents": {"1": i % 2 == 0},
            }
        )
    for i in range(3):
        responses.append(
            {
                "id": f"company-{i}",
                "submittedAt": BASE_MS + i * HOUR,
                "leadType": "COMPANY",
                "submitter": f"urn:li:person:C{i}",
                "form": NEWSLETTER,
                "answers": {"1": f"Org{i}", "2": f"org{i}@client.example"},
                "consents": {"1": True},
            }
        )
    responses.append(
        {
            "id": "guide-0",
            "submittedAt": BASE_MS,
            "leadType": "SPONSORED",
            "form": GUIDE,
            "version": 1,
            "answers": {"1": "guide@client.example"},
        }
    )
    return {
        "application": {
            "client_id": APP,
            "client_secret": SECRET,
            "redirect_uris": ["http://127.0.0.1", "http://localhost"],
        },
        "members": [
            {
                "id": KEIKO,
                "name": "Keiko Tanaka",
                "email": "keiko@agency.example",
                "ad_accounts": [ACCOUNT, OTHER_ACCOUNT],
            },
            {
                "id": LARS,
                "name": "Lars Eriksen",
                "email": "lars@contoso.example",
                "ad_accounts": [OTHER_ACCOUNT],
                "organizations": [ORG],
            },
        ],
        "forms": [
            {
                "id": WEBINAR,
                "owner": {"sponsoredAccount": ACCOUNT},
                "name": "Autumn webinar",
                "state": "PUBLISHED",
                "locale": "en_US",
                "created": BASE_MS - 24 * HOUR,
                "versions": [_version_one(), _version_two()],
            },
            {
                "id": GUIDE,
                "owner": {"sponsoredAccount": OTHER_ACCOUNT},
                "name": "Guide",
                "versions": [
                    {
                        "versionId": 1,
                        "questions": [
                            {
                                "questionId": 1,
                                "name": "email",
                                "predefinedField": "EMAIL",
                                "question": "Email",
                            }
                        ],
                    }
                ],
            },
            {
                "id": NEWSLETTER,
                "owner": {"organization": ORG},
                "name": "Newsletter",
                "versions": [
                    {
                        "versionId": 1,
                        "questions": [
                            {
                                "questionId": 1,
                                "name": "firstName",
                                "predefinedField": "FIRST_NAME",
                                "question": "First name",
                            },
                            {
                                "questionId": 2,
                                "name": "email",
                                "predefinedField": "EMAIL",
                                "question": "Email",
                            },
                        ],
                        "consents": [{"consentId": 1, "text": "Privacy policy", "required": True}],
                    }
                ],
            },
        ],
        "responses": responses,
    }
