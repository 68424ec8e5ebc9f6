"""A standard organisation for the API suite, built through the real services.

    Organization (root) ── admin (System Administrator)
    ├── Sales ──────────── manager (Marketing Manager), marketer (Marketer),
    │   │                  assistant (Marketing Assistant), nobody (no roles)
    │   └── Sales EU ───── eu_marketer (Marketer)
    └── Support ────────── orgadmin (Marketing Administrator),
                           support_assistant (Marketing Assistant),
                           team "Campaign" (members: assistant; no roles)

One contact and one lead per owner, keyed by the owner's name ("team" for Campaign).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.orm import Session

from gatherly.org import service as org_service
from gatherly.org.models import BusinessUnit, Team, User
from tests import factories as f
from tests.api.helpers import Headers, lead

# Which records (by owner key) each user may read: the rules the suite checks.
EVERYTHING = {"admin", "manager", "marketer", "assistant", "eu", "support", "team"}
VISIBLE = {
    "admin": EVERYTHING,
    "orgadmin": EVERYTHING,
    "manager": {"manager", "marketer", "assistant", "eu"},
    "marketer": {"manager", "marketer", "assistant"},
    "eu_marketer": {"eu"},
    "assistant": {"assistant", "team"},
    "support_assistant": {"support"},
    "nobody": set(),
}

COUNTRIES = {
    "admin": "JP",
    "manager": "DE",
    "marketer": "DE",
    "assistant": "FR",
    "eu": "FR",
    "support": "US",
    "team": "US",
}


@dataclass
class Org:
    """The standard organisation: BUs, users, their token headers and record ids."""

    root: BusinessUnit
    sales: BusinessUnit
    sales_eu: BusinessUnit
    support: BusinessUnit
    campaign: Team
    users: dict[str, User] = field(default_factory=dict)
    headers: dict[str, Headers] = field(default_factory=dict)
    contacts: dict[str, int] = field(default_factory=dict)
    leads: dict[str, int] = field(default_factory=dict)
    owners: dict[str, tuple[str, int]] = field(default_factory=dict)

    def records(self, kind: str) -> dict[str, int]:
        """Record ids by owner key for ``contacts`` or ``leads``."""
        return self.contacts if kind == "contacts" else self.leads

    def ids(self, kind: str, keys: set[str]) -> set[int]:
        """The ids of the records with these owner keys."""
        return {self.records(kind)[k] for k in keys}


def build_org(db: Session) -> Org:
    """Create the standard organisation and commit it."""
    root = org_service.get_root(db=db)
    sales = f.bu(db, "Sales")
    sales_eu = f.bu(db, "Sales EU", sales)
    support = f.bu(db, "Support")
    users = {
        "admin": f.user(db, "admin", None, "System Administrator"),
        "orgadmin": f.user(db, "orgadmin", support, "Marketing Administrator"),
        "manager": f.user(db, "manager", sales, "Marketing Manager"),
        "marketer": f.user(db, "marketer", sales, "Marketer"),
        "assistant": f.user(db, "assistant", sales, "Marketing Assistant"),
        "eu_marketer": f.user(db, "eu_marketer", sales_eu, "Marketer"),
        "support_assistant": f.user(db, "support_assistant", support, "Marketing Assistant"),
        "nobody": f.user(db, "nobody", sales),
    }
    campaign = f.team(db, "Campaign", support, users["assistant"])
    org = Org(root, sales, sales_eu, support, campaign, users=users)
    owners: dict[str, User | Team] = {
        "admin": users["admin"],
        "manager": users["manager"],
        "marketer": users["marketer"],
        "assistant": users["assistant"],
        "eu": users["eu_marketer"],
        "support": users["support_assistant"],
        "team": campaign,
    }
    for key, owner in owners.items():
        org.owners[key] = ("team" if isinstance(owner, Team) else "user", owner.id)
        person: dict[str, Any] = {
            "email": f"{key}@example.com",
            "first_name": key.capitalize(),
            "last_name": f"Owner-{key}",
            "company": f"{key} GmbH",
            "country": COUNTRIES[key],
        }
        org.contacts[key] = f.contact(db, owner, **person).id
        org.leads[key] = lead(db, owner, topic=f"topic {key}", **person).id
    for name, u in users.items():
        _token, secret = org_service.create_token(db=db, user_id=u.id, name="test")
        org.headers[name] = {"Authorization": f"Bearer {secret}"}
    db.commit()
    return org


@pytest.fixture
def org(db: Session) -> Org:
    """The standard organisation, committed, with an API token per user."""
    return build_org(db)
