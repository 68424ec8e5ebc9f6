"""LinkedIn user profiles, their sources and assignment rules, and reading the leads taken
in (SPEC B12).

A profile is made when a user connects their LinkedIn account (OAuth 2.0): it is owned by
that user, holds the member's tokens encrypted, and lists the ad accounts and company pages
the member has a role on (sources, each on or off). Leads read through it belong to its
owner unless an assignment rule names another owner (``linkedin.intake``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly.access import engine as access
from gatherly.access.levels import Level, Privilege
from gatherly.contact import owned
from gatherly.contact import service as contact_service
from gatherly.contact.schemas import OwnerRef, normalize_country
from gatherly.core import audit, crypto
from gatherly.core.config import Settings
from gatherly.core.db import utcnow
from gatherly.core.exceptions import Conflict, Forbidden, NotFound, ValidationFailed
from gatherly.core.pagination import Page, paginate
from gatherly.linkedin.client import LinkedInClient, LinkedInError, OAuth, Tokens
from gatherly.linkedin.models import (
    CONNECTED,
    DISCONNECTED,
    LinkedInAssignmentRule,
    LinkedInLead,
    LinkedInProfile,
    LinkedInSource,
)

PROFILE, LEAD, RULE = "linkedin_profile", "linkedin_lead", "linkedin_assignment_rule"
PURPOSE = "linkedin-token"
STATE_AGE = 600  # seconds a member has to allow the connection
crypto.register_column(LinkedInProfile.access_token_encrypted, purpose=PURPOSE)
crypto.register_column(LinkedInProfile.refresh_token_encrypted, purpose=PURPOSE)


# ------------------------------------------------------------------ connecting


def oauth(settings: Settings, http: httpx.Client | None = None) -> OAuth:
    """The installation's LinkedIn app; ValidationFailed when it is not configured."""
    if not settings.linkedin_client_id or settings.linkedin_client_secret is None:
        raise ValidationFailed(
            "LinkedIn is not set up here: an administrator sets GATHERLY_LINKEDIN_CLIENT_ID "
            "and GATHERLY_LINKEDIN_CLIENT_SECRET (see docs/linkedin.md)",
            field="linkedin",
        )
    return OAuth(
        auth_url=settings.linkedin_auth_url,
        client_id=settings.linkedin_client_id,
        client_secret=settings.linkedin_client_secret.get_secret_value(),
        http=http,
    )


def _states(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(
        crypto.secret_key(settings).get_secret_value(),
        salt="gatherly.linkedin.connect",
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def connect_url(
    *, principal: access.Principal, settings: Settings, redirect_uri: str, nonce: str = ""
) -> str:
    """Where to send the user to allow Gatherly to read their LinkedIn leads. The state is
    signed for this user and ``nonce`` (which the web page also keeps in the browser, so the
    answer is only taken in the browser that asked) and lasts ten minutes."""
    if principal.max_level(PROFILE, Privilege.CREATE) == Level.NONE:
        raise Forbidden("your roles do not let you connect a LinkedIn profile")
    state = _states(settings).dumps([principal.user_id, nonce])
    return oauth(settings).authorize_url(redirect_uri=redirect_uri, state=str(state))


def client_for(
    db: Session,
    settings: Settings,
    profile: LinkedInProfile,
    *,
    http: httpx.Client | None = None,
    on_tokens: Any = None,
) -> LinkedInClient:
    """A client acting as the profile's member with its stored tokens."""
    if profile.access_token_encrypted is None:
        raise Conflict("this profile is disconnected: connect it again", field="state")
    tokens = Tokens(
        access_token=crypto.decrypt(
            settings, profile.access_token_encrypted, purpose=PURPOSE
        ).get_secret_value(),
        refresh_token=crypto.decrypt(
            settings, profile.refresh_token_encrypted, purpose=PURPOSE
        ).get_secret_value()
        if profile.refresh_token_encrypted
        else None,
        expires_at=profile.token_expires_at or utcnow(),
        refresh_expires_at=profile.refresh_expires_at,
        scope=profile.scope,
    )
    return LinkedInClient(
        api_url=settings.linkedin_api_url,
        version=settings.linkedin_version,
        tokens=tokens,
        oauth=oauth(settings, http),
        on_tokens=on_tokens or (lambda t: store_tokens(settings, profile, t)),
        http=http,
    )


def store_tokens(settings: Settings, profile: LinkedInProfile, tokens: Tokens) -> None:
    """Keep a grant's tokens, encrypted."""
    profile.access_token_encrypted = crypto.encrypt(
        settings, SecretStr(tokens.access_token), purpose=PURPOSE
    )
    if tokens.refresh_token:
        profile.refresh_token_encrypted = crypto.encrypt(
            settings, SecretStr(tokens.refresh_token), purpose=PURPOSE
        )
    profile.token_expires_at = tokens.expires_at
    profile.refresh_expires_at = tokens.refresh_expires_at or profile.refresh_expires_at
    profile.scope = tokens.scope


def complete_connect(
    *,
    db: Session,
    principal: access.Principal,
    settings: Settings,
    code: str,
    state: str,
    redirect_uri: str,
    nonce: str = "",
    http: httpx.Client | None = None,
) -> LinkedInProfile:
    """Finish connecting: check the state was signed for this user and this ``nonce``, take
    the tokens, and make (or reconnect) the member's profile owned by the user, with its
    sources."""
    try:
        signed = _states(settings).loads(state, max_age=STATE_AGE)
    except BadSignature:
        raise ValidationFailed(
            "this LinkedIn answer is out of date or not for you: connect again", field="state"
        ) from None
    if not isinstance(signed, list) or len(signed) != 2 or signed[0] != principal.user_id:
        raise ValidationFailed("this LinkedIn answer was for another user", field="state")
    if not nonce or not hmac.compare_digest(str(signed[1]), nonce):
        raise ValidationFailed(
            "this LinkedIn answer was not asked for in this browser (or was used already): "
            "connect again",
            field="state",
        )
    if http is None:
        with httpx.Client(timeout=30) as own:
            return complete_connect(
                db=db,
                principal=principal,
                settings=settings,
                code=code,
                state=state,
                redirect_uri=redirect_uri,
                nonce=nonce,
                http=own,
            )
    try:
        tokens = oauth(settings, http).exchange(code=code, redirect_uri=redirect_uri)
        probe = LinkedInClient(
            api_url=settings.linkedin_api_url,
            version=settings.linkedin_version,
            tokens=tokens,
            oauth=oauth(settings, http),
            http=http,
        )
        me = probe.me()
        sources = probe.sources()
    except LinkedInError as exc:
        raise ValidationFailed(f"LinkedIn refused: {exc.message}", field="code") from None
    member = str(me.get("sub") or "")
    profile = db.scalar(select(LinkedInProfile).where(LinkedInProfile.member_id == member))
    if profile is None:
        columns = owned.new_columns(db, principal, PROFILE, None)
        profile = LinkedInProfile(member_id=member, **columns)
        db.add(profile)
        verb = "connect"
    else:
        if not access.can(db, principal, Privilege.WRITE, PROFILE, profile):
            raise Conflict(
                f"{me.get('name') or 'this LinkedIn member'} is connected by someone else; "
                "ask them or an administrator",
                field="member",
            )
        verb = "reconnect"
    profile.name = str(me.get("name") or member)
    profile.email = me.get("email")
    store_tokens(settings, profile, tokens)
    profile.state, profile.last_error = CONNECTED, ""
    owned.touch(profile, principal)
    db.flush()
    known = {
        s.owner_urn: s
        for s in db.scalars(select(LinkedInSource).where(LinkedInSource.profile_id == profile.id))
    }
    for kind, urn, role in sources:
        if urn in known:
            known[urn].role = role
        else:
            db.add(LinkedInSource(profile_id=profile.id, owner_urn=urn, kind=kind, role=role))
    for urn, gone in known.items():
        if urn not in {u for _k, u, _r in sources}:  # the member no longer has a role there
            gone.enabled, gone.role = False, ""
    db.flush()
    audit.log(
        db,
        actor=principal,
        action=f"linkedin.{verb}",
        target_type=PROFILE,
        target_id=str(profile.id),
        target_label=profile.name,
        after={"member": member, "sources": sorted(urn for _k, urn, _r in sources)},
    )
    return profile


# ------------------------------------------------------------------ profiles and sources


def get_profile(
    *,
    db: Session,
    principal: access.Principal,
    profile_id: int,
    privilege: Privilege = Privilege.READ,
) -> LinkedInProfile:
    """A profile the caller may read (NotFound otherwise), checked for ``privilege``."""
    found: LinkedInProfile = owned.get(
        db, principal, PROFILE, profile_id, noun="LinkedIn profile", privilege=privilege,
        field="profile_id",
    )  # fmt: skip
    return found


def list_profiles(*, db: Session, principal: access.Principal) -> list[LinkedInProfile]:
    """The profiles the caller may read."""
    stmt = access.scope(
        select(LinkedInProfile).order_by(LinkedInProfile.id),
        principal=principal,
        record_type=PROFILE,
    )
    return list(db.scalars(stmt))


def sources(*, db: Session, principal: access.Principal, profile_id: int) -> list[LinkedInSource]:
    """A profile's ad accounts and pages."""
    get_profile(db=db, principal=principal, profile_id=profile_id)
    return list(
        db.scalars(
            select(LinkedInSource)
            .where(LinkedInSource.profile_id == profile_id)
            .order_by(LinkedInSource.id)
        )
    )


def set_source(
    *, db: Session, principal: access.Principal, profile_id: int, source_id: int, enabled: bool
) -> LinkedInSource:
    """Read a source's leads, or stop (Write on the profile)."""
    get_profile(db=db, principal=principal, profile_id=profile_id, privilege=Privilege.WRITE)
    profile = db.get_one(LinkedInProfile, profile_id)
    source = db.get(LinkedInSource, source_id)
    if source is None or source.profile_id != profile_id:
        raise NotFound(f"source {source_id} not found", field="source_id")
    if source.enabled != enabled:
        source.enabled = enabled
        owned.touch(profile, principal)
        db.flush()
        audit.log(
            db,
            actor=principal,
            action="linkedin.source",
            target_type=PROFILE,
            target_id=str(profile.id),
            target_label=profile.name,
            before={source.owner_urn: not enabled},
            after={source.owner_urn: enabled},
        )
    return source


def disconnect(*, db: Session, principal: access.Principal, profile_id: int) -> LinkedInProfile:
    """Forget the member's tokens and stop reading (Write); leads already taken stay."""
    profile = get_profile(
        db=db, principal=principal, profile_id=profile_id, privilege=Privilege.WRITE
    )
    before = profile.state
    if before == DISCONNECTED:
        return profile
    profile.access_token_encrypted = profile.refresh_token_encrypted = None
    profile.state = DISCONNECTED
    owned.touch(profile, principal)
    db.flush()
    audit.log(
        db,
        actor=principal,
        action="linkedin.disconnect",
        target_type=PROFILE,
        target_id=str(profile.id),
        target_label=profile.name,
        before={"state": before},
        after={"state": DISCONNECTED},
    )
    return profile


class PollQueue(Protocol):
    """Where polls go to be run by a worker (``gatherly.jobs.queue.Jobs``)."""

    def enqueue_poll(self, *, profile_id: int) -> None: ...


def request_poll(
    *, db: Session, principal: access.Principal, profile_id: int, queue: PollQueue
) -> LinkedInProfile:
    """Read a profile's new leads now, on the worker (Write on the profile)."""
    profile = get_profile(
        db=db, principal=principal, profile_id=profile_id, privilege=Privilege.WRITE
    )
    if profile.state != CONNECTED:
        raise Conflict("this profile is not connected: connect it again first", field="state")
    queue.enqueue_poll(profile_id=profile.id)
    return profile


# ------------------------------------------------------------------ leads taken in


def _leads(
    db: Session, principal: access.Principal, profile_id: int | None, test: bool | None
) -> Any:
    stmt = select(LinkedInLead)
    if profile_id is not None:
        get_profile(db=db, principal=principal, profile_id=profile_id)
        stmt = stmt.where(LinkedInLead.profile_id == profile_id)
    if test is not None:
        stmt = stmt.where(LinkedInLead.test_lead == test)
    return stmt


def get_lead(*, db: Session, principal: access.Principal, lead_id: int) -> LinkedInLead:
    """One LinkedIn lead the caller may read."""
    found: LinkedInLead = owned.get(
        db, principal, LEAD, lead_id, noun="LinkedIn lead", field="lead_id"
    )
    return found


def list_leads(
    *,
    db: Session,
    principal: access.Principal,
    profile_id: int | None = None,
    test: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """The LinkedIn leads the caller may read (owned like the records they became); ``test``
    True or False keeps only test leads or only real ones."""
    stmt = _leads(db, principal, profile_id, test)
    return paginate(
        db,
        access.scope(stmt, principal=principal, record_type=LEAD),
        id_column=LinkedInLead.id,
        sortable={"id": LinkedInLead.id, "submitted_at": LinkedInLead.submitted_at},
        sort="-submitted_at",
        cursor=cursor,
        limit=limit,
    )


def count_leads(
    *,
    db: Session,
    principal: access.Principal,
    profile_id: int | None = None,
    test: bool | None = None,
) -> int:
    """How many LinkedIn leads the caller may read (of one profile)."""
    stmt = access.scope(
        _leads(db, principal, profile_id, test).with_only_columns(LinkedInLead.id),
        principal=principal,
        record_type=LEAD,
    )
    return db.scalar(select(func.count()).select_from(stmt.subquery())) or 0


# ------------------------------------------------------------------ assignment rules


@dataclass(frozen=True)
class RuleIn:
    """An assignment rule's settings: the conditions (all that are set must hold) and the
    owner the matching leads go to."""

    name: str
    owner: OwnerRef
    form_urn: str | None = None
    campaign_urn: str | None = None
    lead_type: str | None = None
    country: str | None = None
    position: int = 0
    enabled: bool = True


def _rule_state(rule: LinkedInAssignmentRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "form_urn": rule.form_urn,
        "campaign_urn": rule.campaign_urn,
        "lead_type": rule.lead_type,
        "country": rule.country,
        "owner": {"type": rule.owner_type, "id": rule.owner_id},
    }


def _check_admin(db: Session, principal: access.Principal | None, privilege: Privilege) -> None:
    if principal is not None:
        access.require(db, principal, privilege, RULE)


def list_rules(*, db: Session, principal: access.Principal | None) -> list[LinkedInAssignmentRule]:
    """The assignment rules in the order they are tried."""
    _check_admin(db, principal, Privilege.READ)
    return list(
        db.scalars(
            select(LinkedInAssignmentRule).order_by(
                LinkedInAssignmentRule.position, LinkedInAssignmentRule.id
            )
        )
    )


def save_rule(
    *,
    db: Session,
    principal: access.Principal | None,
    rule_in: RuleIn,
    rule_id: int | None = None,
) -> LinkedInAssignmentRule:
    """Make or change an assignment rule (System Administrators); audited."""
    _check_admin(db, principal, Privilege.CREATE if rule_id is None else Privilege.WRITE)
    if not rule_in.name.strip():
        raise ValidationFailed("a rule needs a name", field="name")
    if not any((rule_in.form_urn, rule_in.campaign_urn, rule_in.lead_type, rule_in.country)):
        raise ValidationFailed(
            "a rule needs at least one condition (form, campaign, lead type or country)",
            field="form_urn",
        )
    country = None
    if rule_in.country:
        try:
            country = normalize_country(rule_in.country)
        except ValueError as exc:
            raise ValidationFailed(str(exc), field="country") from None
    contact_service.resolve_owner(db=db, owner=rule_in.owner)
    if rule_id is None:
        rule = LinkedInAssignmentRule(owner_type=rule_in.owner.type, owner_id=rule_in.owner.id)
        db.add(rule)
        before = None
    else:
        found = db.get(LinkedInAssignmentRule, rule_id)
        if found is None:
            raise NotFound(f"assignment rule {rule_id} not found", field="rule_id")
        rule, before = found, _rule_state(found)
    rule.name = rule_in.name.strip()
    rule.position, rule.enabled = rule_in.position, rule_in.enabled
    rule.form_urn, rule.campaign_urn = rule_in.form_urn or None, rule_in.campaign_urn or None
    rule.lead_type, rule.country = rule_in.lead_type or None, country
    rule.owner_type, rule.owner_id = rule_in.owner.type, rule_in.owner.id
    rule.modified_at = utcnow()
    db.flush()
    old, new = audit.diff(before or {}, _rule_state(rule))
    audit.log(
        db,
        actor=principal,
        action=f"linkedin_rule.{'create' if before is None else 'update'}",
        target_type=RULE,
        target_id=str(rule.id),
        target_label=rule.name,
        before=old if before is not None else None,
        after=new,
    )
    return rule


def delete_rule(*, db: Session, principal: access.Principal | None, rule_id: int) -> None:
    """Delete an assignment rule (System Administrators); audited."""
    _check_admin(db, principal, Privilege.DELETE)
    rule = db.get(LinkedInAssignmentRule, rule_id)
    if rule is None:
        raise NotFound(f"assignment rule {rule_id} not found", field="rule_id")
    audit.log(
        db,
        actor=principal,
        action="linkedin_rule.delete",
        target_type=RULE,
        target_id=str(rule.id),
        target_label=rule.name,
        before=_rule_state(rule),
    )
    db.delete(rule)
    db.flush()
