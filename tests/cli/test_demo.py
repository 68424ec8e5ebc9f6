"""``gatherly demo --no-serve``: the sample organisation, its tokens, and re-running it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gatherly import demo as sample
from gatherly.contact.models import Contact
from gatherly.core.exceptions import NotFound, Unauthenticated
from gatherly.event.models import MarketingEvent
from gatherly.org import service as org
from gatherly.org.directory import load_principal
from gatherly.org.models import ApiToken
from gatherly.teams import service as teams_service
from tests.cli.helpers import (
    CliRun,
    DemoOutput,
    SeededDemo,
    make_cli,
    parse_demo,
    run_script,
    session_on,
)

SAMPLE_USERS = {username: (bu or "Organization", role) for username, _n, bu, role in sample.USERS}
SAMPLE_BUS = {
    "Organization": None,
    "EMEA": "Organization",
    "Germany": "EMEA",
    "France": "EMEA",
    "Americas": "Organization",
    "United States": "Americas",
    "Brazil": "Americas",
}
CURL_USERS = ["olivia", "emma", "gustav", "ulla"]


def run_demo(cli: CliRun, *args: str) -> DemoOutput:
    return parse_demo(cli("demo", "--no-serve", *args).stdout)


def test_demo_syncs_the_emulated_teams_tenant_into_events(seeded_demo: SeededDemo) -> None:
    assert "sync succeeded" in seeded_demo.output.text
    with session_on(seeded_demo.database_url) as db:
        events = db.scalars(select(MarketingEvent)).all()
        gustav = org.get_user_by_username(db=db, username=sample.DEMO_EVENT_OWNER)
        marta = org.get_user_by_username(db=db, username=sample.DEMO_ORGANIZER)
        assert len(events) == 10  # 8 webinars and 2 town halls
        assert sorted(e.event_type for e in events).count("town hall") == 2
        # Marta's webinars are hers (her email maps her to the organizer); the rest land
        # with the default owner; all in Germany.
        owners = {(e.owner_id, e.owning_bu_id) for e in events}
        assert owners == {
            (gustav.id, gustav.business_unit_id),
            (marta.id, marta.business_unit_id),
        }
        assert marta.business_unit_id == gustav.business_unit_id
        organizers = teams_service.list_organizers(db=db, principal=load_principal(db, marta.id))
        assert [o.display_name for o in organizers] == ["Marta Lindqvist"]
        synced = db.execute(select(func.count()).where(Contact.origin == "teams_sync")).scalar_one()
        assert synced > 0
        assert not db.scalar(select(func.count()).where(Contact.email.endswith("@contoso.example")))
    assert "signed in as marta" in seeded_demo.output.text


def count_segments(db: Session) -> int:
    """Sample segments (the demo creates them once, by name)."""
    from gatherly.segment.models import Segment

    return int(db.execute(select(func.count()).select_from(Segment)).scalar_one())


def contact_count(db: Session) -> int:
    """Contacts the demo seeds (the Teams sync adds its own, origin teams_sync)."""
    return int(db.execute(select(func.count()).where(Contact.origin == "manual")).scalar_one())


@pytest.fixture
def demo_cli(db_url: str) -> CliRun:
    """The CLI on a fresh, never-upgraded SQLite file (demo upgrades it itself)."""
    return make_cli(db_url)


def test_demo_seeds_the_sample_business_units_users_and_3000_contacts(
    seeded_demo: SeededDemo,
) -> None:
    cli = make_cli(seeded_demo.database_url)
    assert "Sample users (3000 contacts in all)" in seeded_demo.output.text

    bus = json.loads(cli("bu", "list", "--json").stdout)
    names = {b["id"]: b["name"] for b in bus}
    assert {b["name"]: names.get(b["parent_id"]) for b in bus} == SAMPLE_BUS

    users = json.loads(cli("users", "list", "--json").stdout)
    assert len(users) == len(sample.USERS)
    assert {u["username"]: (u["business_unit"], *u["roles"]) for u in users} == SAMPLE_USERS

    with session_on(seeded_demo.database_url) as db:
        seeded = select(func.count()).where(Contact.origin == "manual")
        assert db.execute(seeded).scalar_one() == 3000
        # Sample users can also sign in with the published password.
        user = org.verify_password(db=db, username="ulla", password=sample.DEMO_PASSWORD)
        assert user.username == "ulla"


def test_demo_prints_a_working_token_per_user_and_curl_lines(seeded_demo: SeededDemo) -> None:
    output = seeded_demo.output
    assert set(output.tokens) == set(SAMPLE_USERS)
    assert len(set(output.tokens.values())) == len(sample.USERS)

    with session_on(seeded_demo.database_url) as db:
        for username, token in output.tokens.items():
            assert org.authenticate_token(db=db, secret=token).username == username

    count_lines = [line for line in output.curl_lines if line.endswith("/contacts/count")]
    assert len(count_lines) == len(CURL_USERS)
    for line, username in zip(count_lines, CURL_USERS, strict=True):
        assert line == (
            f"curl -s -H 'Authorization: Bearer {output.tokens[username]}' "
            "http://127.0.0.1:8000/api/v1/contacts/count"
        )
    assert (
        f"curl -s -H 'Authorization: Bearer {output.tokens['gustav']}' "
        "http://127.0.0.1:8000/api/v1/events"
    ) in output.curl_lines
    members = [line for line in output.curl_lines if line.endswith("/members")]
    assert [line.split("Bearer ")[1].split("'")[0] for line in members] == [
        output.tokens["olivia"],
        output.tokens["gustav"],
    ]
    assert "API docs: http://127.0.0.1:8000/api/v1/docs" in output.text


def test_demo_again_adds_no_contacts_and_replaces_only_the_demo_tokens(
    demo_cli: CliRun, open_db: Callable[[], Session]
) -> None:
    first = run_demo(demo_cli)
    personal = demo_cli("users", "token", "olivia", "--name", "laptop").stdout.strip()
    second = run_demo(demo_cli, "--host", "demo.example", "--port", "9123")

    db = open_db()
    assert contact_count(db) == 3000
    assert len(json.loads(demo_cli("bu", "list", "--json").stdout)) == len(SAMPLE_BUS)
    assert len(json.loads(demo_cli("users", "list", "--json").stdout)) == len(sample.USERS)

    assert set(second.tokens) == set(SAMPLE_USERS)
    for username in SAMPLE_USERS:
        assert second.tokens[username] != first.tokens[username]
        assert org.authenticate_token(db=db, secret=second.tokens[username]).username == username
        with pytest.raises(Unauthenticated, match="revoked"):
            org.authenticate_token(db=db, secret=first.tokens[username])
    # The curl lines carry the new tokens and follow --host/--port.
    assert second.curl_lines == [
        f"curl -s -H 'Authorization: Bearer {second.tokens[u]}' "
        "http://demo.example:9123/api/v1/contacts/count"
        for u in CURL_USERS
    ] + [
        f"curl -s -H 'Authorization: Bearer {second.tokens['gustav']}' "
        "http://demo.example:9123/api/v1/events"
    ] + [
        f"curl -s -H 'Authorization: Bearer {second.tokens[u]}' "
        "http://demo.example:9123/api/v1/segments/1/members"
        for u in ("olivia", "gustav")
    ]
    # Running it again made no second copy of the sample segments.
    assert count_segments(db) == 3
    # A token the user made for themselves is not a demo token and survives.
    assert org.authenticate_token(db=db, secret=personal).username == "olivia"

    active_demo = db.execute(
        select(ApiToken.user_id, func.count())
        .where(ApiToken.name == "demo", ApiToken.revoked_at.is_(None))
        .group_by(ApiToken.user_id)
    ).all()
    assert len(active_demo) == len(sample.USERS)
    assert all(n == 1 for _user, n in active_demo)


def test_demo_on_an_existing_organisation_keeps_its_users(demo_cli: CliRun) -> None:
    demo_cli("db", "upgrade")
    demo_cli("users", "create", "existing", "--role", "Marketer")
    output = run_demo(demo_cli)
    assert set(output.tokens) == set(SAMPLE_USERS)
    users = {u["username"] for u in json.loads(demo_cli("users", "list", "--json").stdout)}
    assert users == {*SAMPLE_USERS, "existing"}


def test_demo_materialises_sample_segments_whose_counts_differ_per_viewer(
    seeded_demo: SeededDemo,
) -> None:
    from gatherly.org.directory import load_principal
    from gatherly.segment import service as segments
    from gatherly.segment.models import Segment

    assert "Segments (materialised" in seeded_demo.output.text
    with session_on(seeded_demo.database_url) as db:
        rows = db.scalars(select(Segment).order_by(Segment.id)).all()
        assert len(rows) == 3
        assert {s.refresh_state for s in rows} == {"fresh"}
        attended = rows[0]
        assert attended.member_total > 0
        olivia = load_principal(db, org.get_user_by_username(db=db, username="olivia").id)
        seen = segments.segment_counts(db=db, principal=olivia, segment=attended)
        assert seen.visible == attended.member_total  # organization level reads them all
        fran = load_principal(db, org.get_user_by_username(db=db, username="fran").id)
        # Fran (Marketer, France) cannot open Olivia's segment at all.
        with pytest.raises(NotFound, match="not found"):
            segments.get_segment(db=db, principal=fran, segment_id=attended.id)


def test_demo_on_a_taken_port_says_so_before_seeding_anything(tmp_path: Path) -> None:
    database = tmp_path / "untouched.db"
    url = f"sqlite+pysqlite:///{database}"
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_script(url, "demo", "--port", str(port))
        served = run_script(url, "serve", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error (port): 127.0.0.1:{port} is taken")
    assert f"make demo PORT={port + 10}" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # no tokens printed for a server that will not start
    assert not database.exists() or database.stat().st_size == 0  # nothing seeded
    assert served.returncode == 1
    assert served.stderr.startswith(f"error (port): 127.0.0.1:{port} is taken")


def test_demo_seeds_a_content_setting_and_a_message_sent_to_the_vip_list(
    seeded_demo: SeededDemo,
) -> None:
    from gatherly.email.models import ContentSetting, EmailMessage, EmailSend
    from gatherly.segment.models import MarketingList

    with session_on(seeded_demo.database_url) as db:
        setting = db.scalars(select(ContentSetting)).one()
        assert setting.default_for == "organization"
        message = db.scalars(select(EmailMessage)).one()
        assert (message.name, message.state, message.topic) == (
            sample.DEMO_MESSAGE,
            "in_use",
            "Webinars",
        )
        send = db.scalars(select(EmailSend)).one()
        vips = db.scalars(select(MarketingList).where(MarketingList.name == sample.DEMO_LIST)).one()
        assert (send.message_id, send.list_ids, send.state) == (message.id, [vips.id], "scheduled")
    assert f"the list “{sample.DEMO_LIST}”" in seeded_demo.output.text


def test_demo_publishes_a_sign_up_page_owned_by_gustav_and_offers_linkedin(
    seeded_demo: SeededDemo,
) -> None:
    from gatherly.capture.models import MarketingForm, MarketingPage

    text = seeded_demo.output.text
    assert f"http://127.0.0.1:8000/p/{sample.DEMO_PAGE}" in text
    assert "Connect and allow as Keiko Tanaka" in text
    with session_on(seeded_demo.database_url) as db:
        gustav = org.get_user_by_username(db=db, username="gustav")
        form = db.scalars(select(MarketingForm).where(MarketingForm.name == sample.DEMO_FORM)).one()
        page = db.scalars(select(MarketingPage).where(MarketingPage.slug == sample.DEMO_PAGE)).one()
        assert (form.state, form.owner_id, page.state, page.form_id) == (
            "live",
            gustav.id,
            "live",
            form.id,
        )


def test_demo_scores_contacts_with_a_live_model_and_pins_reports(seeded_demo: SeededDemo) -> None:
    from gatherly.report import service as reports
    from gatherly.scoring.models import LeadScore, ScoringModel

    assert "Lead scoring: “Webinar engagement” scores every contact" in seeded_demo.output.text
    with session_on(seeded_demo.database_url) as db:
        model = db.scalars(select(ScoringModel).where(ScoringModel.name == sample.DEMO_MODEL)).one()
        assert (model.state, model.full_pending) == ("live", False)
        scores = list(db.scalars(select(LeadScore.score).where(LeadScore.model_id == model.id)))
        assert len(scores) == db.scalar(select(func.count()).select_from(Contact))
        assert max(scores) >= 30  # some synced contacts attended for 30 minutes or more
        olivia = load_principal(db, org.get_user_by_username(db=db, username="olivia").id)
        run = reports.run_report(db=db, principal=olivia, builtin="webinar-performance")
        assert run.result.rows
