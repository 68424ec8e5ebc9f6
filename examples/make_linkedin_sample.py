"""Generate ``examples/linkedin-sample.json``: a deterministic LinkedIn-emulator fixture.

Standard library only and seeded, so re-running it reproduces the file byte for byte::

    python examples/make_linkedin_sample.py            # writes examples/linkedin-sample.json
    python examples/make_linkedin_sample.py OUT.json   # writes elsewhere

The fixture is in the emulator's compact shape (docs/linkedin-emulator.md). The scenario is
built around a fixed reference "now", ``REFERENCE_NOW`` (2026-12-01T12:00:00Z): every
response was submitted in the five weeks before it.

- 2 members: Keiko Tanaka (agency; both ad accounts) and Lars Eriksen (Contoso; the second
  ad account and the company page).
- 3 forms: "Autumn webinar" (ad account 508123456; two versions whose question ids differ),
  "Data platform guide" (ad account 508777001) and "Contoso newsletter" (organization
  2414183: company-page leads, leadType COMPANY, a required consent).
- 40 responses, 3 of them test leads; two share a submittedAt to the millisecond; one
  person answered two forms; five people also registered for webinars in
  ``examples/sample-tenant.json`` (the Graph sample), one with the e-mail's case changed.
"""

from __future__ import annotations

import json
import random
import string
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEED = 20261201
REFERENCE_NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)

ACCOUNT_AGENCY = "urn:li:sponsoredAccount:508123456"
ACCOUNT_CONTOSO = "urn:li:sponsoredAccount:508777001"
ORGANIZATION = "urn:li:organization:2414183"

WEBINAR_FORM, GUIDE_FORM, NEWSLETTER_FORM = 7042, 7043, 7044

# People who also registered for webinars in examples/sample-tenant.json: a demo that loads
# both samples shows LinkedIn leads matched to existing contacts. Hannah's address is typed
# with capitals here (matching ignores case).
KNOWN_PEOPLE = [
    ("Mateo", "O'Neill", "mateo.oneill@tailspin.example"),
    ("Mia", "Müller", "mia.muller@litware.example"),
    ("Emil", "Andersen", "emil.andersen@adatum.example"),
    ("Hannah", "Andersen", "Hannah.Andersen@Fabrikam.example"),
    ("Aiko", "Tanaka", "aiko.tanaka@woodgrove.example"),
]
# Everyone else is at a domain the Graph sample does not use.
FIRST_NAMES = [
    "Amelia", "Bruno", "Carmen", "Dmitri", "Esther", "Farid", "Greta", "Hugo", "Ines",
    "Jonas", "Kalani", "Leila", "Marco", "Nora", "Oskar", "Paula", "Quentin", "Rosa",
    "Stefan", "Tara", "Ulla", "Viktor", "Wen", "Yara",
]  # fmt: skip
LAST_NAMES = [
    "Adeyemi", "Bergström", "Castillo", "Dubois", "Eriksson", "Fontaine", "Grünewald",
    "Hashimoto", "Ivanova", "Jansen", "Kowalczyk", "Lindqvist", "Moreno", "Nakamura",
    "Okonkwo", "Petrov", "Quispe", "Rahman", "Sato", "Tanaka",
]  # fmt: skip
DOMAINS = [
    "proseware.example", "fourthcoffee.example", "alpineski.example", "relecloud.example",
    "lucernepublishing.example", "wideworldimporters.example",
]  # fmt: skip
COMPANIES = {
    "proseware.example": "Proseware",
    "fourthcoffee.example": "Fourth Coffee",
    "alpineski.example": "Alpine Ski House",
    "relecloud.example": "Relecloud",
    "lucernepublishing.example": "Lucerne Publishing",
    "wideworldimporters.example": "Wide World Importers",
    "tailspin.example": "Tailspin Toys",
    "litware.example": "Litware",
    "adatum.example": "Adatum",
    "fabrikam.example": "Fabrikam",
    "woodgrove.example": "Woodgrove Bank",
    "agency.example": "Tanaka & Partners",
    "contoso.example": "Contoso",
}
JOB_TITLES = ["Marketing Manager", "CTO", "Data Analyst", "Head of Growth", "Consultant", "Founder"]
COUNTRIES = ["Germany", "Japan", "United States", "Sweden", "Spain", "Brazil", "India"]
CITIES = ["Berlin", "Osaka", "Austin", "Gothenburg", "Valencia", "São Paulo", "Pune"]


def ms(moment: datetime) -> int:
    """Epoch milliseconds."""
    return int(moment.timestamp() * 1000)


def q(
    question_id: int, name: str, text: str, field: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A compact question."""
    out: dict[str, Any] = {"questionId": question_id, "name": name}
    if field:
        out["predefinedField"] = field
    out["question"] = text
    out.update(extra)
    return out


def options(*texts: str) -> list[dict[str, Any]]:
    """Options numbered from 1."""
    return [{"id": i + 1, "text": t} for i, t in enumerate(texts)]


def contact_questions(first: int) -> list[dict[str, Any]]:
    """First name, last name, e-mail, company, job title with ids from ``first``."""
    return [
        q(first, "firstName", "First name", "FIRST_NAME"),
        q(first + 1, "lastName", "Last name", "LAST_NAME"),
        q(first + 2, "email", "Email address", "EMAIL"),
        q(first + 3, "company", "Company name", "COMPANY_NAME"),
        q(first + 4, "jobTitle", "Job title", "JOB_TITLE"),
    ]


def forms() -> list[dict[str, Any]]:
    """The three forms."""
    interest = "What interests you?"
    return [
        {
            "id": WEBINAR_FORM,
            "owner": {"sponsoredAccount": ACCOUNT_AGENCY},
            "name": "Autumn webinar",
            "state": "PUBLISHED",
            "locale": "en_US",
            "created": ms(datetime(2026, 10, 20, 9, 14, tzinfo=UTC)),
            "versions": [
                {
                    "versionId": 1,
                    "created": ms(datetime(2026, 10, 20, 9, 14, tzinfo=UTC)),
                    "questions": [
                        *contact_questions(1),
                        q(6, "interest", interest, options=options("AI", "Data", "Automation")),
                    ],
                    "consents": [
                        {"consentId": 1, "text": "I agree to receive updates", "required": False}
                    ],
                },
                {
                    # Edited on 12 November: a country question and a fourth interest; LinkedIn
                    # renumbers every question of the new version.
                    "versionId": 2,
                    "created": ms(datetime(2026, 11, 12, 15, 2, tzinfo=UTC)),
                    "questions": [
                        *contact_questions(7),
                        q(12, "country", "Country/Region", "COUNTRY"),
                        q(
                            13,
                            "interest",
                            interest,
                            options=options("AI", "Data", "Automation", "Security"),
                        ),
                    ],
                    "consents": [
                        {"consentId": 1, "text": "I agree to receive updates", "required": False}
                    ],
                },
            ],
        },
        {
            "id": GUIDE_FORM,
            "owner": {"sponsoredAccount": ACCOUNT_CONTOSO},
            "name": "Data platform guide",
            "state": "PUBLISHED",
            "locale": "en_US",
            "created": ms(datetime(2026, 10, 25, 13, 40, tzinfo=UTC)),
            "versions": [
                {
                    "versionId": 1,
                    "questions": [
                        q(1, "firstName", "First name", "FIRST_NAME"),
                        q(2, "lastName", "Last name", "LAST_NAME"),
                        q(3, "email", "Work email", "EMAIL"),
                        q(4, "phone", "Phone number", "PHONE_NUMBER"),
                        q(5, "company", "Company name", "COMPANY_NAME"),
                        q(6, "jobTitle", "Job title", "JOB_TITLE"),
                        q(7, "city", "City", "CITY"),
                        q(
                            8,
                            "teamSize",
                            "How large is your data team?",
                            options=options("1-10", "11-50", "51-200", "More than 200"),
                        ),
                    ],
                    "consents": [
                        {
                            "consentId": 1,
                            "text": "Contoso may contact me about its data platform",
                            "required": False,
                        }
                    ],
                }
            ],
        },
        {
            "id": NEWSLETTER_FORM,
            "owner": {"organization": ORGANIZATION},
            "name": "Contoso newsletter",
            "state": "PUBLISHED",
            "locale": "en_US",
            "created": ms(datetime(2026, 10, 15, 8, 0, tzinfo=UTC)),
            "versions": [
                {
                    "versionId": 1,
                    "questions": [
                        q(1, "firstName", "First name", "FIRST_NAME"),
                        q(2, "lastName", "Last name", "LAST_NAME"),
                        q(3, "email", "Email address", "EMAIL"),
                        q(4, "company", "Company name", "COMPANY_NAME"),
                        q(5, "country", "Country/Region", "COUNTRY"),
                    ],
                    "consents": [
                        {
                            "consentId": 1,
                            "text": "I have read the Contoso privacy policy",
                            "required": True,
                        },
                        {
                            "consentId": 2,
                            "text": "Send me the monthly newsletter",
                            "required": False,
                        },
                    ],
                }
            ],
        },
    ]


class Gen:
    """The seeded random stream and its helpers."""

    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.used: set[str] = {p[2].lower() for p in KNOWN_PEOPLE}

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def person_urn(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "urn:li:person:" + "".join(self.rng.choice(alphabet) for _ in range(10))

    def moment(self, start: datetime, end: datetime) -> int:
        span = int((end - start).total_seconds() * 1000)
        return ms(start) + self.rng.randrange(span)

    def stranger(self) -> tuple[str, str, str]:
        while True:
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            local = f"{first}.{last}".lower()
            for a, b in (("ö", "o"), ("ü", "u"), ("ã", "a")):
                local = local.replace(a, b)
            email = f"{local}@{self.rng.choice(DOMAINS)}"
            if email not in self.used:
                self.used.add(email)
                return first, last, email


def answers_for(
    g: Gen, person: tuple[str, str, str], form_id: int, version: int
) -> tuple[dict[str, Any], dict[str, bool]]:
    """A response's answers (question id → text or option ids) and consents."""
    first, last, email = person
    company = COMPANIES[email.split("@")[1].lower()]
    title = g.rng.choice(JOB_TITLES)
    answers: dict[str, Any]
    if form_id == WEBINAR_FORM:
        base = 1 if version == 1 else 7
        answers = {
            str(base): first,
            str(base + 1): last,
            str(base + 2): email,
            str(base + 3): company,
        }
        if g.rng.random() < 0.8:  # job title left blank now and then
            answers[str(base + 4)] = title
        if version == 2:
            answers["12"] = g.rng.choice(COUNTRIES)
        interest_count = 3 if version == 1 else 4
        picked = sorted(g.rng.sample(range(1, interest_count + 1), g.rng.choice([1, 1, 2])))
        answers["6" if version == 1 else "13"] = picked
        return answers, {"1": g.rng.random() < 0.6}
    if form_id == GUIDE_FORM:
        answers = {"1": first, "2": last, "3": email, "5": company, "6": title}
        if g.rng.random() < 0.7:
            answers["4"] = f"+1 555 01{g.rng.randrange(100):02d}"
        answers["7"] = g.rng.choice(CITIES)
        answers["8"] = [g.rng.randrange(1, 5)]
        return answers, {"1": g.rng.random() < 0.5}
    answers = {"1": first, "2": last, "3": email, "4": company, "5": g.rng.choice(COUNTRIES)}
    return answers, {"1": True, "2": g.rng.random() < 0.7}


def responses(g: Gen) -> list[dict[str, Any]]:
    """The 40 responses (3 test leads), in submission order."""
    # (form, version, count, window start, window end, campaign, creative)
    plan = [
        (WEBINAR_FORM, 1, 9, datetime(2026, 10, 27, tzinfo=UTC), datetime(2026, 11, 12, 15, tzinfo=UTC), "urn:li:sponsoredCampaign:44120", "urn:li:sponsoredCreative:99231"),
        (WEBINAR_FORM, 2, 9, datetime(2026, 11, 12, 16, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC), "urn:li:sponsoredCampaign:44121", "urn:li:sponsoredCreative:99232"),
        (GUIDE_FORM, 1, 14, datetime(2026, 10, 28, tzinfo=UTC), datetime(2026, 11, 30, 18, tzinfo=UTC), "urn:li:sponsoredCampaign:45001", "urn:li:sponsoredCreative:99410"),
        (NEWSLETTER_FORM, 1, 8, datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 12, 1, 9, tzinfo=UTC), None, None),
    ]  # fmt: skip
    known = list(KNOWN_PEOPLE)
    out: list[dict[str, Any]] = []
    repeat: tuple[str, str, str] | None = None
    for form_id, version, count, start, end, campaign, creative in plan:
        for n in range(count):
            if n == 0 and version == 1:  # a test lead from Campaign Manager opens each form
                if form_id == WEBINAR_FORM:
                    person, submitter = ("Keiko", "Tanaka", "keiko@agency.example"), "AbC123"
                else:
                    person, submitter = (
                        ("Lars", "Eriksen", "lars.eriksen@contoso.example"),
                        "Lq7Rz0",
                    )
                submitter, test = f"urn:li:person:{submitter}", True
            else:
                if known and n % 3 == 1:
                    person = known.pop(0)
                elif repeat is not None and form_id == GUIDE_FORM and n == 5:
                    person = repeat  # answered the webinar form too
                else:
                    person = g.stranger()
                    if repeat is None and form_id == WEBINAR_FORM:
                        repeat = person
                submitter, test = g.person_urn(), False
            answers, consents = answers_for(g, person, form_id, version)
            item: dict[str, Any] = {
                "id": g.uuid(),
                "submittedAt": g.moment(start, end),
                "leadType": "COMPANY" if form_id == NEWSLETTER_FORM else "SPONSORED",
                "testLead": test,
                "submitter": submitter,
                "form": form_id,
                "version": version,
            }
            if campaign is not None:
                item["campaign"] = campaign
                item["creative"] = creative
            item["answers"] = answers
            item["consents"] = consents
            out.append(item)
    # Two guide responses submitted in the same millisecond: a poll must not lose either.
    guide = [r for r in out if r["form"] == GUIDE_FORM and not r["testLead"]]
    guide[3]["submittedAt"] = guide[2]["submittedAt"]
    return sorted(out, key=lambda r: (r["submittedAt"], r["id"]))


def build() -> dict[str, Any]:
    """The whole fixture."""
    g = Gen()
    return {
        "application": {
            "client_id": "gatherly-demo",
            "client_secret": "demo-secret",
            "redirect_uris": ["http://127.0.0.1", "http://localhost"],
        },
        "members": [
            {
                "id": "AbC123",
                "name": "Keiko Tanaka",
                "email": "keiko@agency.example",
                "ad_accounts": [ACCOUNT_AGENCY, ACCOUNT_CONTOSO],
                "organizations": [],
            },
            {
                "id": "Lq7Rz0",
                "name": "Lars Eriksen",
                "email": "lars.eriksen@contoso.example",
                "ad_accounts": [ACCOUNT_CONTOSO],
                "organizations": [ORGANIZATION],
            },
        ],
        "forms": forms(),
        "responses": responses(g),
    }


def main(argv: list[str]) -> None:
    """Write the fixture to ``argv[1]`` or ``examples/linkedin-sample.json``."""
    target = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("linkedin-sample.json")
    text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
    target.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv)
