"""Large generated tenants for the emulator: many directory users, few organizers, many
webinars, for benchmarks of organizer and event discovery (``bench/discovery.py``).

The shapes follow ``bench/sync.py`` and the fixture format (docs/graph-emulator.md);
everything is derived from the seed, so one seed always gives the same tenant.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

TENANT = "4b2a1c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
DOMAIN = "contoso.example"
APP = "8d9e0f1a-2b3c-4d4e-8f5a-6b7c8d9e0f1a"
SECRET = "large-tenant-secret"  # noqa: S105 (a generated tenant, not a credential)
POLICY = "Webinar-Sync"
PERMISSIONS = [
    "VirtualEvent.Read.All",
    "OnlineMeetingArtifact.Read.All",
    "OnlineMeetings.Read.All",
    "OnlineMeetingRecording.Read.All",
    "OnlineMeetingTranscript.Read.All",
    "User.Read.All",
]
_FIRST_START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def _when(value: datetime) -> dict[str, str]:
    return {"dateTime": value.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _event(
    guid: Any, index: int, organizer: dict[str, Any], *, kind: str, registrations: int
) -> dict[str, Any]:
    start = _FIRST_START + timedelta(hours=5 * index)
    end = start + timedelta(hours=1)
    name = f"{'Town hall' if kind == 'townhall' else 'Webinar'} {index:05d}"
    event: dict[str, Any] = {
        "id": f"{guid()}@{TENANT}",
        "displayName": name,
        "status": "published",
        "audience": "everyone",
        "description": {"contentType": "text", "content": name},
        "startDateTime": _when(start),
        "endDateTime": _when(end),
        "createdBy": {
            "application": None,
            "device": None,
            "user": {
                "@odata.type": "#microsoft.graph.communicationsUserIdentity",
                "id": organizer["id"],
                "displayName": organizer["displayName"],
                "tenantId": TENANT,
            },
        },
        "sessions": [
            {
                "id": guid(),
                "subject": name,
                "startDateTime": _when(start),
                "endDateTime": _when(end),
                "joinWebUrl": f"https://teams.microsoft.com/l/meetup-join/{kind}-{index}",
            }
        ],
    }
    if kind == "webinar":
        event["registrations"] = [
            {
                "id": guid(),
                "email": f"guest{index}.{n}@fabrikam.example",
                "firstName": f"Guest{n}",
                "lastName": f"Of{index}",
                "status": "registered",
                "registrationDateTime": (start - timedelta(days=n + 1)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
            }
            for n in range(registrations)
        ]
    return event


def large_tenant(
    *,
    users: int,
    organizers: int,
    ungranted: int,
    webinars: int,
    townhalls: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """A valid fixture of ``users`` directory users and ``webinars`` (+ ``townhalls``) events.

    The first ``organizers`` users (``Organizer 00000`` …) organize the events, dealt
    round-robin; ``ungranted`` of them (chosen by the seed) hold no application access
    policy, so their events are silently left out of the tenant-wide lists. Every other
    user holds the policy. Each event has one session and at most two registrations (the
    tenant is for discovery, not for registration volume); ids are GUIDs from the seed.

    Args:
        users: directory users in all (organizers included).
        organizers: how many of them organize events (at least 1 when there are events).
        ungranted: how many organizers have ``applicationAccessPolicy: null``.
        webinars: webinars, each with one session and 0-2 registrations.
        townhalls: town halls, each with one session.
        seed: the random seed (ids and which organizers are ungranted).

    Returns:
        The fixture as JSON data; its one application (``APP``/``SECRET``) holds every
        permission the connector uses, ``User.Read.All`` included.

    Raises:
        ValueError: on counts that cannot make a tenant (negative, or more organizers
        than users, or events without organizers).

    Example:
        ``EmulatorState(large_tenant(users=50_000, organizers=400, ungranted=40,
        webinars=2_000))``
    """
    if min(users, organizers, ungranted, webinars, townhalls) < 0:
        raise ValueError("counts must not be negative")
    if organizers > users or ungranted > organizers:
        raise ValueError("need ungranted <= organizers <= users")
    if (webinars or townhalls) and not organizers:
        raise ValueError("events need at least one organizer")
    rng = random.Random(seed)

    def guid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    people: list[dict[str, Any]] = []
    for n in range(users):
        local = f"organizer{n:05d}" if n < organizers else f"user{n:05d}"
        people.append(
            {
                "id": guid(),
                "displayName": f"Organizer {n:05d}" if n < organizers else f"User {n:05d}",
                "mail": f"{local}@{DOMAIN}",
                "userPrincipalName": f"{local}@{DOMAIN}",
                "applicationAccessPolicy": POLICY,
            }
        )
    for n in rng.sample(range(organizers), ungranted):
        people[n]["applicationAccessPolicy"] = None
    return {
        "tenant": {"id": TENANT, "domains": [DOMAIN]},
        "applications": [{"appId": APP, "secret": SECRET, "permissions": list(PERMISSIONS)}],
        "users": people,
        "webinars": [
            _event(guid, i, people[i % organizers], kind="webinar", registrations=i % 3)
            for i in range(webinars)
        ],
        "townhalls": [
            _event(guid, i, people[i % organizers], kind="townhall", registrations=0)
            for i in range(townhalls)
        ],
    }
