"""The sample organisation ``make demo`` seeds (BUs, users at each role tier, contacts) and its
connection to the emulated sample Teams tenant."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from gatherly.contact import matching
from gatherly.contact.models import Contact
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.org import service as org
from gatherly.org.models import ApiToken, BusinessUnit, User
from gatherly.teams import service as teams_service
from gatherly.teams.models import ORGANIZER_OK, TeamsConnection, TeamsOrganizer, TeamsWebinar

DEMO_PASSWORD = "gatherly-demo"  # noqa: S105 - published sample password
# (name, parent)
BUS = [
    ("EMEA", None),
    ("Germany", "EMEA"),
    ("France", "EMEA"),
    ("Americas", None),
    ("United States", "Americas"),
    ("Brazil", "Americas"),
]
# (username, full name, BU or None for the root, role)
USERS = [
    ("admin", "Avery Admin", None, "System Administrator"),
    ("olivia", "Olivia Org", None, "Marketing Administrator"),
    ("emma", "Emma EMEA", "EMEA", "Marketing Manager"),
    ("gustav", "Gustav Germany", "Germany", "Marketer"),
    ("fran", "Françoise France", "France", "Marketer"),
    ("ulla", "Ulla User", "Germany", "Marketing Assistant"),
    ("ana", "Ana Americas", "Americas", "Marketing Manager"),
    ("sam", "Sam States", "United States", "Marketer"),
    ("marta", "Marta Lindqvist", "Germany", "Marketer"),
]
# Marta is also a Teams organizer of the sample tenant: the same email maps her, so her
# webinars are hers (My webinars, Sync now) and land in Germany as she does.
EMAILS = {"marta": "marta.lindqvist@contoso.example"}
DEMO_ORGANIZER = "marta"
COUNTRY = {
    "Germany": "DE",
    "France": "FR",
    "United States": "US",
    "Brazil": "BR",
    "EMEA": "GB",
    "Americas": "CA",
    None: "JP",
}
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "Daniel",
    "Eva",
    "Felix",
    "Giulia",
    "Hiro",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
    "Mateo",
    "Nora",
    "Omar",
    "Paula",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
]
LAST = [
    "Schmidt",
    "Martin",
    "Silva",
    "Johnson",
    "Müller",
    "Dubois",
    "Santos",
    "Brown",
    "Weber",
    "Bernard",
    "Costa",
    "Miller",
    "Wagner",
    "Petit",
    "Lima",
    "Davis",
]
COMPANIES = ["Contoso", "Fabrikam", "Northwind", "Tailspin", "Woodgrove", "Litware", "Adatum"]


@dataclass(frozen=True)
class DemoUser:
    """A sample user, their role and a fresh API token."""

    username: str
    role: str
    business_unit: str
    token: str


def seed(db: Session, *, contacts: int = 3000, seed_value: int = 7) -> None:
    """Create the sample organisation once; a second run changes nothing."""
    if db.execute(select(BusinessUnit.id).where(BusinessUnit.name == "EMEA")).first():
        return
    root = org.get_root(db=db)
    ids: dict[str | None, int] = {None: root.id}
    for name, parent in BUS:
        ids[name] = org.create_bu(db=db, name=name, parent_id=ids[parent]).id
    users: dict[str, User] = {}
    for username, full_name, bu, role in USERS:
        user = org.create_user(
            db=db,
            username=username,
            full_name=full_name,
            email=EMAILS.get(username, f"{username}@gatherly.example"),
            business_unit_id=ids[bu],
            password=DEMO_PASSWORD,
        )
        org.assign_role(db=db, role_id=org.get_role_by_name(db=db, name=role).id, user_id=user.id)
        users[username] = user
    events = org.create_team(
        db=db,
        name="EMEA Events Team",
        business_unit_id=ids["EMEA"],
        description="Owns the contacts of EMEA events.",
    )
    org.assign_role(
        db=db, role_id=org.get_role_by_name(db=db, name="Marketer").id, team_id=events.id
    )
    for member in ("gustav", "fran"):
        org.add_member(db=db, team_id=events.id, user_id=users[member].id)

    rng = random.Random(seed_value)
    owners = [u for u in users.values() if u.username != "admin"]
    now = utcnow()
    rows = []
    for i in range(contacts):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        if rng.random() < 0.05:
            owner_type, owner_id, bu_id = "team", events.id, ids["EMEA"]
        else:
            owner = rng.choice(owners)
            owner_type, owner_id, bu_id = "user", owner.id, owner.business_unit_id
        bu_name = next(n for n, v in ids.items() if v == bu_id)
        rows.append(
            {
                "email": f"{first}.{last}.{i}@example.com".lower(),
                "first_name": first,
                "last_name": last,
                "company": rng.choice(COMPANIES),
                "job_title": rng.choice(["Marketing Lead", "CTO", "Analyst", "Buyer", ""]),
                "phone": "",
                "country": COUNTRY[bu_name],
                "custom": {},
                "owner_type": owner_type,
                "owner_id": owner_id,
                "owning_bu_id": bu_id,
                "created_at": now,
                "modified_at": now,
            }
        )
    db.execute(insert(Contact), rows)
    matching.rekey(db, record_type="contact")  # the sample holds its matching keys
    db.flush()


def issue_tokens(db: Session) -> list[DemoUser]:
    """Revoke earlier demo tokens and issue one fresh token per sample user."""
    out = []
    names = {bu.id: bu.name for bu in db.execute(select(BusinessUnit)).scalars()}
    for username, _full, _bu, role in USERS:
        user = org.get_user_by_username(db=db, username=username)
        db.execute(
            update(ApiToken)
            .where(
                ApiToken.user_id == user.id, ApiToken.name == "demo", ApiToken.revoked_at.is_(None)
            )
            .values(revoked_at=utcnow())
        )
        _token, secret = org.create_token(db=db, user_id=user.id, name="demo")
        out.append(DemoUser(username, role, names[user.business_unit_id], secret))
    return out


def contact_total(db: Session) -> int:
    """How many contacts exist (for the demo banner)."""
    return int(db.execute(select(func.count()).select_from(Contact)).scalar_one())


# The sample tenant's own domains: partner-agency.example's organizer is excluded from
# sync, and contoso.example staff are never created as contacts (SPEC T3).
DEMO_ORGANIZER_EXCLUSIONS = ["partner-agency.example"]
DEMO_CONTACT_EXCLUSIONS = ["contoso.example"]
DEMO_EVENT_OWNER = "gustav"  # owns webinars whose organizer has no Gatherly user


def connect_sample_tenant(
    db: Session, settings: Settings, *, fixture: dict[str, Any], emulator_url: str
) -> TeamsConnection:
    """Connect to the emulated sample tenant with its fully permitted app, demo exclusions."""
    app = fixture["applications"][0]
    tenant = fixture["tenant"]["id"]
    admin = org.get_user_by_username(db=db, username="admin")
    owner = org.get_user_by_username(db=db, username=DEMO_EVENT_OWNER)
    teams_service.connect(
        db=db,
        settings=settings,
        tenant_id=tenant,
        client_id=app["appId"],
        client_secret=SecretStr(app["secret"]),
        authority=f"{emulator_url}/{tenant}",
        graph_url=f"{emulator_url}/v1.0",
        default_owner_id=owner.id,
        by_user_id=admin.id,
    )
    return teams_service.update_settings(
        db=db,
        organizer_exclusion_domains=DEMO_ORGANIZER_EXCLUSIONS,
        contact_exclusion_domains=DEMO_CONTACT_EXCLUSIONS,
        by_user_id=admin.id,
    )


def tick_everything(db: Session) -> int:
    """Tick Sync on every discovered webinar and town hall of a syncable organizer, and make
    new ones of those organizers sync by default; returns how many are ticked."""
    ok = select(TeamsOrganizer.id).where(TeamsOrganizer.status == ORGANIZER_OK)
    db.execute(
        update(TeamsOrganizer).where(TeamsOrganizer.id.in_(ok)).values(sync_new_by_default=True)
    )
    db.execute(
        update(TeamsWebinar).where(TeamsWebinar.organizer_id.in_(ok)).values(sync_enabled=True)
    )
    return int(db.scalar(select(func.count()).where(TeamsWebinar.sync_enabled)) or 0)


DEMO_LIST = "Webinar VIPs"


@dataclass(frozen=True)
class DemoSegment:
    """A sample segment and its owner."""

    id: int
    name: str
    owner: str


def sample_segments(db: Session) -> list[DemoSegment]:
    """A marketing list and three segments over the synced events (idempotent by name).

    Olivia (organization level) owns an organization-scoped segment and the list; Gustav
    (Marketer, Germany) owns business-unit-scoped ones. They materialise on the worker.
    """
    from gatherly.org.directory import load_principal
    from gatherly.segment import service as segments
    from gatherly.segment.models import MarketingList, Segment

    olivia = load_principal(db, org.get_user_by_username(db=db, username="olivia").id)
    gustav = load_principal(db, org.get_user_by_username(db=db, username="gustav").id)
    lst = db.execute(select(MarketingList).where(MarketingList.name == DEMO_LIST)).scalar()
    if lst is None:
        lst = segments.create_list(db=db, principal=olivia, name=DEMO_LIST)
        vips = db.execute(
            select(Contact.id).where(Contact.origin == "teams_sync").order_by(Contact.id).limit(25)
        ).scalars()
        ids = list(vips)
        if ids:
            segments.add_to_list(db=db, principal=olivia, list_id=lst.id, contact_ids=ids)
    wanted: list[tuple[str, Any, Any, str]] = [
        (
            "Attended a webinar for 30+ minutes",
            olivia,
            {"participation": "attended", "min_minutes": 30},
            "organization",
        ),
        (
            "Registered but did not attend",
            gustav,
            {"participation": "not_attended"},
            "business_unit",
        ),
        (
            "Webinar VIPs or attendees of an hour or more",
            olivia,
            {"any": [{"list": lst.id}, {"participation": "attended", "min_minutes": 60}]},
            "organization",
        ),
    ]
    out = []
    for name, who, criteria, scope in wanted:
        found = db.execute(select(Segment).where(Segment.name == name)).scalar()
        if found is None:
            found = segments.create_segment(
                db=db, principal=who, name=name, criteria=criteria, scope=scope
            )
        out.append(DemoSegment(found.id, name, who.username))
    return out


DEMO_MODEL = "Webinar engagement"
DEMO_DASHBOARD = "Webinars at a glance"


def sample_scoring(db: Session) -> tuple[int, int]:
    """A live lead-scoring model and a dashboard of the built-in reports, both Olivia's
    (organization level), idempotent by name; the model is scored here, once."""
    from gatherly.org.directory import load_principal
    from gatherly.report import service as reports
    from gatherly.report.models import Dashboard
    from gatherly.scoring import service as scoring
    from gatherly.scoring.models import ScoringModel

    olivia = load_principal(db, org.get_user_by_username(db=db, username="olivia").id)
    model = db.execute(select(ScoringModel).where(ScoringModel.name == DEMO_MODEL)).scalar()
    if model is None:
        conditions = [
            {"name": "Attended a webinar for 30+ minutes", "points": 30,
             "interaction": "attended", "min_minutes": 30, "frequency": "each"},
            {"name": "Registered for two webinars", "points": 15,
             "interaction": "registered", "times": 2},
            {"name": "Opened our email lately", "points": 10,
             "interaction": "email_opened", "within_days": 30},
            {"name": "Registered but never attended", "points": -10,
             "interaction": "attended", "frequency": "never"},
        ]  # fmt: skip
        model = scoring.create_model(
            db=db, principal=olivia, name=DEMO_MODEL, conditions=conditions, sales_ready=60
        )
        scoring.set_state(db=db, principal=olivia, model_id=model.id, state="live")
        scoring.rescore_model(db=db, principal=olivia, model_id=model.id)
    board = db.execute(select(Dashboard).where(Dashboard.name == DEMO_DASHBOARD)).scalar()
    if board is None:
        items = [{"builtin": "webinar-performance"}, {"builtin": "contact-acquisition"}]
        board = reports.create_dashboard(db=db, principal=olivia, name=DEMO_DASHBOARD, items=items)
    return model.id, board.id


DEMO_MESSAGE = "Thank you for joining our webinars"
DEMO_HTML = """<style>
  .wrap { font-family: Arial, sans-serif; max-width: 560px; margin: 0 auto; color: #1a1a1a; }
  .cta { display: inline-block; background: #1f3a5f; color: #ffffff; padding: 10px 18px;
         border-radius: 4px; text-decoration: none; }
  .foot { font-size: 12px; color: #666666; }
</style>
<div class="wrap">
  <p>Hello {{ contact.first_name | default("there") }},</p>
  <p>Thank you for your interest in our webinars{% if contact.company %} — and greetings to
  everyone at {{ contact.company }}{% endif %}. The recordings and slides are online.</p>
  <p><a class="cta" href="https://www.example.com/webinars/recordings">Watch the recordings</a></p>
  <p class="foot">{{ sender.name }} · {{ postal_address }}<br>
  <a href="{{ subscription_centre_url }}">Choose what you receive</a> ·
  <a href="{{ unsubscribe_url }}">Unsubscribe</a></p>
</div>
"""


def sample_email(db: Session, settings: Settings) -> tuple[int, bool]:
    """The organisation's default content setting and a ready thank-you message (Olivia's),
    sent once to the Webinar VIPs list (idempotent by name). Returns the message id and
    whether a send was made now."""
    from gatherly.email import sends
    from gatherly.email import service as email
    from gatherly.email.models import ContentSetting, EmailMessage, EmailSend
    from gatherly.email.schemas import ContentSettingIn, MessageIn
    from gatherly.jobs.queue import Jobs
    from gatherly.org.directory import load_principal
    from gatherly.segment.models import MarketingList

    olivia = load_principal(db, org.get_user_by_username(db=db, username="olivia").id)
    if db.scalar(select(ContentSetting.id).where(ContentSetting.default_for.is_not(None))) is None:
        setting = email.create_content_setting(
            db=db,
            principal=olivia,
            setting_in=ContentSettingIn(
                name="Contoso Events",
                sender_name="Contoso Events",
                sender_email="events@contoso.example",
                reply_to="hello@contoso.example",
                postal_address="Contoso Ltd · 1 Harbour Street · 20457 Hamburg · Germany",
            ),
        )
        email.set_default(
            db=db, principal=olivia, setting_id=setting.id, default_for="organization"
        )
    message = db.scalars(select(EmailMessage).where(EmailMessage.name == DEMO_MESSAGE)).first()
    if message is None:
        message = email.create_message(
            db=db,
            principal=olivia,
            message_in=MessageIn(
                name=DEMO_MESSAGE,
                subject="{{ contact.first_name | default('Hello') }}, the recordings are online",
                preheader="Slides, recordings and what comes next",
                html=DEMO_HTML,
                topic="Webinars",
            ),
        )
        email.make_ready(
            db=db, principal=olivia, message_id=message.id, public_url=settings.public_url
        )
    if db.scalar(select(EmailSend.id).where(EmailSend.message_id == message.id)) is not None:
        return message.id, False
    vips = db.scalars(select(MarketingList.id).where(MarketingList.name == DEMO_LIST)).first()
    if vips is None:
        return message.id, False
    sends.create_send(
        db=db, principal=olivia, message_id=message.id, list_ids=[vips], queue=Jobs(settings)
    )
    return message.id, True


DEMO_FORM = "Autumn webinar sign-up"
DEMO_PAGE = "autumn-webinars"


def sample_form(db: Session) -> str:
    """Gustav's live sign-up form on a published page at /p/autumn-webinars (idempotent by
    name); people who send it become contacts and leads owned by Gustav. Returns the slug."""
    from gatherly.capture import forms
    from gatherly.capture.models import MarketingForm, MarketingPage
    from gatherly.org.directory import load_principal

    gustav = load_principal(db, org.get_user_by_username(db=db, username="gustav").id)
    form = db.scalars(select(MarketingForm).where(MarketingForm.name == DEMO_FORM)).first()
    if form is None:
        form = forms.create_form(
            db=db,
            principal=gustav,
            form_in={
                "name": DEMO_FORM,
                "description": "The sign-up for the autumn webinar series.",
                "fields": [
                    {"key": "email", "label": "Work email", "type": "email", "required": True},
                    {"key": "first_name", "label": "First name", "required": True},
                    {"key": "last_name", "label": "Last name", "required": True},
                    {"key": "company", "label": "Company"},
                    {"key": "country", "label": "Country", "type": "country"},
                    {
                        "key": "custom.interest",
                        "label": "What interests you most?",
                        "type": "select",
                        "options": ["Analytics", "Automation", "Security"],
                    },
                ],
                "consents": [
                    {
                        "key": "newsletter",
                        "text": "Send me the monthly newsletter. I can unsubscribe at any time.",
                    }
                ],
                "lead_topic": "Autumn webinar series",
                "thank_you": "Thank you: the invitation is on its way.",
            },
        )
        forms.set_form_state(db=db, principal=gustav, form_id=form.id, state="live")
    if db.scalars(select(MarketingPage).where(MarketingPage.slug == DEMO_PAGE)).first() is None:
        page = forms.create_page(
            db=db,
            principal=gustav,
            page_in={
                "name": "Autumn webinars",
                "slug": DEMO_PAGE,
                "title": "Autumn webinar series",
                "body": "Four live sessions on analytics, automation and security.\n\n"
                "Sign up once and we send you the invitations.",
                "form_id": form.id,
            },
        )
        forms.set_page_state(db=db, principal=gustav, page_id=page.id, state="live")
    return DEMO_PAGE
