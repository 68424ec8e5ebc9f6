"""Duplicates on the web pages: the warning on create and edit (and "create anyway"), CSV
import with each row's outcome, the search for duplicates, merging a pair, and the
duplicate detection rules under Admin.

The organisation: Germany has a marketer (Dana, business-unit level) and an assistant
(Otto, user level); France has its own marketer (Fred); Root has the administrator.
Greta is in Germany twice (the second made by hand, as an import might have), with a
registration on the newer one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from gatherly.capture import duplicates
from gatherly.capture.models import DuplicateJob
from gatherly.contact import matching
from gatherly.contact import service as contact_service
from gatherly.contact.models import Contact, DuplicateRule, Lead, Tombstone
from gatherly.contact.schemas import ShareIn
from gatherly.event.models import EventRegistration
from gatherly.org.models import User
from tests import factories as f
from tests.api.helpers import lead as make_lead
from tests.web.conftest import Live, client_sign_in, shot, sign_in, text_of, with_password


@dataclass
class World:
    dana: User
    otto: User
    fred: User
    root: User
    greta: Contact  # Germany, Dana's, the older
    greta_again: Contact  # Germany, Dana's, the same email, a registration
    otto_own: Contact  # Germany, Otto's
    francoise: Contact  # France, Fred's
    lena: Lead  # Germany, Dana's


@pytest.fixture
def world(db: Session) -> World:
    germany = f.bu(db, "Germany")
    france = f.bu(db, "France")
    dana = with_password(db, f.user(db, "dana", germany, "Marketer"))
    otto = with_password(db, f.user(db, "otto", germany, "Marketing Assistant"))
    fred = with_password(db, f.user(db, "fred", france, "Marketer"))
    root = with_password(db, f.user(db, "root_admin", None, "System Administrator"))
    greta = f.contact(
        db, dana, first_name="Greta", last_name="Germanicus", email="greta@kunde.de", company=""
    )
    greta_again = f.contact(
        db,
        dana,
        first_name="Greta",
        last_name="Germanicus-Neu",
        email="greta@kunde.de",
        company="Kunde AG",
        custom={"source": "fair"},
    )
    event = f.event(db, dana, "Spring webinar")
    f.registration(db, event, greta_again)
    otto_own = f.contact(db, otto, first_name="Olga", last_name="Otto", email="olga@kunde.de")
    francoise = f.contact(
        db, fred, first_name="Françoise", last_name="Fleur", email="francoise@client.fr"
    )
    lena = make_lead(db, dana, first_name="Lena", last_name="Leitner", email="lena@firma.de")
    db.commit()
    return World(dana, otto, fred, root, greta, greta_again, otto_own, francoise, lena)


def _count(db: Session, model: type[Contact | Lead | DuplicateRule | Tombstone]) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(model)) or 0


# ------------------------------------------------------------------ create and edit


def test_a_duplicate_is_shown_and_saved_only_when_asked(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "dana")
    before = _count(db, Contact)
    form = {"csrf": csrf, "first_name": "Greta", "last_name": "G.", "email": "Greta@Kunde.de"}
    warned = client.post("/contacts/new", data=form)
    assert warned.status_code == 409
    said = text_of(warned.text)
    assert "Nothing was saved" in said
    assert f'href="/contacts/{world.greta.id}"' in warned.text
    assert "Greta Germanicus" in said
    assert 'name="allow_duplicate" value="true"' in warned.text
    assert "Create anyway" in said
    assert 'value="G."' in warned.text  # what was typed stays
    assert _count(db, Contact) == before
    made = client.post(
        "/contacts/new", data={**form, "allow_duplicate": "true"}, follow_redirects=False
    )
    assert made.status_code == 303
    assert _count(db, Contact) == before + 1

    # A match the viewer may not read is not named, and does not stop them.
    france = client.post(
        "/contacts/new",
        data={"csrf": csrf, "last_name": "Fleur", "email": "francoise@client.fr"},
        follow_redirects=False,
    )
    assert france.status_code == 303
    assert _count(db, Contact) == before + 2

    # An edit onto another record's email: "Save anyway".
    lead = make_lead(db, world.dana, last_name="Other", email="other@firma.de")
    db.commit()
    edit = {"csrf": csrf, "last_name": "Other", "email": "lena@firma.de", "status": "new"}
    refused = client.post(f"/leads/{lead.id}/edit", data=edit)
    assert refused.status_code == 409
    assert f'href="/leads/{world.lena.id}"' in refused.text
    assert "Save anyway" in text_of(refused.text)
    db.expire_all()
    assert db.get_one(Lead, lead.id).email == "other@firma.de"
    saved = client.post(
        f"/leads/{lead.id}/edit", data={**edit, "allow_duplicate": "true"}, follow_redirects=False
    )
    assert saved.headers["location"] == f"/leads/{lead.id}"
    db.expire_all()
    assert db.get_one(Lead, lead.id).email == "lena@firma.de"


# ------------------------------------------------------------------ import


def test_an_import_reports_every_row_and_a_bad_file_beside_its_field(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "dana")
    form = client.get("/contacts/import")
    assert form.status_code == 200
    assert 'enctype="multipart/form-data"' in form.text
    assert 'href="/contacts/import"' in client.get("/contacts").text
    assert "topic" in text_of(client.get("/leads/import").text)
    before = _count(db, Contact)
    csv = (
        "email,first_name,last_name,company\n"
        "olga@kunde.de,Olga,Otto,Neu GmbH\n"  # Otto's: Dana reads it in her BU
        "new@kunde.de,Nina,Neu,\n"
        "broken@,Bad,Row,\n"
        "francoise@client.fr,F,Fleur,\n"  # France's: not readable, so a new record
    )
    done = client.post(
        "/contacts/import",
        data={"csrf": csrf, "on_match": "update"},
        files={"file": ("people.csv", csv.encode(), "text/csv")},
    )
    assert done.status_code == 200, text_of(done.text)[:500]
    said = text_of(done.text)
    for total, name in ((2, "created"), (1, "matched"), (0, "skipped"), (1, "refused")):
        assert f'data-total="{name}">{total}<' in done.text, name
    rows = re.findall(r"<tr>\s*<td class=\"num\">(\d+)</td>.*?</tr>", done.text, re.S)
    assert rows == ["2", "3", "4", "5"]
    assert f'href="/contacts/{world.otto_own.id}"' in done.text
    assert "Refused" in said
    assert "email:" in said
    assert _count(db, Contact) == before + 2
    db.expire_all()
    assert db.get_one(Contact, world.otto_own.id).company == "Neu GmbH"

    # Skip leaves the match as it is.
    again = client.post(
        "/contacts/import",
        data={"csrf": csrf, "on_match": "skip"},
        files={"file": ("people.csv", b"email,company\nolga@kunde.de,Changed\n", "text/csv")},
    )
    assert 'data-total="skipped">1<' in again.text
    db.expire_all()
    assert db.get_one(Contact, world.otto_own.id).company == "Neu GmbH"

    # A bad file is said beside the file field, and nothing is imported.
    for content, words in (
        (b"email,shoe_size\na@b.de,42\n", "unknown column"),
        (b"", "Choose a CSV file"),
        (b"\xff\xfe\x00", "not UTF-8"),
    ):
        bad = client.post(
            "/contacts/import",
            data={"csrf": csrf},
            files={"file": ("bad.csv", content, "text/csv")},
        )
        assert bad.status_code == 422, words
        assert 'id="file-error"' in bad.text
        assert words.lower() in text_of(bad.text).lower()
    assert _count(db, Contact) == before + 2


# ------------------------------------------------------------------ the search


def test_a_search_runs_shows_its_pairs_and_is_its_owners_alone(
    client: TestClient, world: World, db: Session, session_factory: sessionmaker[Session]
) -> None:
    csrf = client_sign_in(client, "dana")
    empty = client.get("/duplicates")
    assert empty.status_code == 200
    assert "You have not looked for duplicate contacts yet" in text_of(empty.text)
    assert "Same email address" in text_of(empty.text)  # the rule in use
    started = client.post(
        "/duplicates", data={"csrf": csrf, "record_type": "contact"}, follow_redirects=False
    )
    assert started.status_code == 303
    job_url = started.headers["location"]
    job_id = int(job_url.rsplit("/", 1)[1])
    waiting = client.get(job_url)
    assert "Waiting to start" in text_of(waiting.text)
    assert 'hx-trigger="every 2s"' in waiting.text
    assert f'href="{job_url}" id="reload"' in waiting.text  # without JavaScript
    assert client.get("/duplicates").text.count('id="job-state"') == 1

    duplicates.run_job(session_factory, job_id)
    shown = client.get(job_url)
    said = text_of(shown.text)
    assert "1 pair you may see now" in said
    assert "Greta Germanicus-Neu" in said
    assert "Same email address" in said
    merge_link = (
        f"/duplicates/merge?record_type=contact&amp;master={world.greta.id}"
        f"&amp;duplicate={world.greta_again.id}"
    )
    assert merge_link in shown.text
    assert 'hx-trigger="every 2s"' not in shown.text
    polled = client.get(job_url, headers={"HX-Request": "true"})
    assert "<html" not in polled.text
    assert 'id="pairs"' in polled.text
    assert client.get(f"{job_url}?cursor=nonsense").status_code == 200  # says why, see below
    assert "no longer works" in text_of(client.get(f"{job_url}?cursor=nonsense").text)

    # Another user: the job is not found, and their own page has no search.
    client_sign_in(client, "fred")
    assert client.get(job_url).status_code == 404
    assert "You have not looked" in text_of(client.get("/duplicates").text)
    fred_csrf = client_sign_in(client, "fred")
    assert client.get("/duplicates?record_type=robot").status_code == 422
    refused = client.post("/duplicates", data={"csrf": fred_csrf, "record_type": "robot"})
    assert refused.status_code == 422
    # With no lead rule published there is nothing to compare by: said, nothing queued.
    lead_rule = db.scalars(
        select(DuplicateRule).where(DuplicateRule.builtin, DuplicateRule.record_type == "lead")
    ).one()
    matching.save_rule(db=db, principal=None, rule_id=lead_rule.id, published=False)
    db.commit()
    no_rule = client.post("/duplicates", data={"csrf": fred_csrf, "record_type": "lead"})
    assert no_rule.status_code == 422
    assert 'id="find-error"' in no_rule.text
    assert "No lead duplicate detection rule is published" in text_of(no_rule.text)
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(DuplicateJob)) == 1


# ------------------------------------------------------------------ merge


def test_a_merge_moves_the_history_and_needs_write_on_both(
    client: TestClient, world: World, db: Session
) -> None:
    master, other = world.greta, world.greta_again
    url = f"/duplicates/merge?record_type=contact&master={master.id}&duplicate={other.id}"
    # Otto reads Greta through a read-only share: he may not merge into her.
    contact_service.share(
        db=db,
        principal=f.principal(db, world.dana),
        kind=contact_service.CONTACT,
        record_id=master.id,
        share_in=ShareIn(principal_type="user", principal_id=world.otto.id, rights=["read"]),
    )
    db.commit()
    csrf = client_sign_in(client, "otto")
    own = f"/duplicates/merge?record_type=contact&master={master.id}&duplicate={world.otto_own.id}"
    assert client.get(own).status_code == 403
    body = {
        "csrf": csrf,
        "record_type": "contact",
        "master": str(master.id),
        "duplicate": str(world.otto_own.id),
    }
    refused = client.post("/duplicates/merge", data=body)
    assert refused.status_code == 403
    assert "Not allowed" in text_of(refused.text)
    # Fred may not read either of them: not found.
    fred_csrf = client_sign_in(client, "fred")
    assert client.get(url).status_code == 404
    gone = client.post(
        "/duplicates/merge",
        data={**body, "csrf": fred_csrf, "duplicate": str(other.id)},
    )
    assert gone.status_code == 404
    db.expire_all()
    assert db.get(Contact, world.otto_own.id) is not None
    assert _count(db, Tombstone) == 0

    csrf = client_sign_in(client, "dana")
    form = client.get(url)
    assert form.status_code == 200
    said = text_of(form.text)
    assert "Filled from the duplicate: the master's is blank." in said  # the company
    assert 'name="keep_last_name" value="duplicate"' in form.text
    assert 'name="keep_company"' not in form.text
    swap = f"master={other.id}&amp;duplicate={master.id}"
    assert swap in form.text
    assert client.get(url.replace(str(other.id), str(master.id))).status_code == 422

    done = client.post(
        "/duplicates/merge",
        data={
            "csrf": csrf,
            "record_type": "contact",
            "master": str(master.id),
            "duplicate": str(other.id),
            "keep_last_name": "master",
            "keep_email": "duplicate",
        },
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/contacts/{master.id}?merged={other.id}")
    landed = text_of(client.get(done.headers["location"]).text)
    assert f"Merged contact {other.id} into this one." in landed
    assert "Moved to it: 1 registration." in landed
    assert "company" in landed.split("Taken from the merged contact:")[1]
    assert client.get(f"/contacts/{other.id}").status_code == 404
    db.expire_all()
    kept = db.get_one(Contact, master.id)
    assert (kept.last_name, kept.company, kept.custom) == (
        "Germanicus",
        "Kunde AG",
        {"source": "fair"},
    )
    registration = db.scalars(select(EventRegistration)).one()
    assert registration.contact_id == master.id
    assert db.scalars(select(Tombstone)).one().merged_into_id == master.id
    # A forged notice cannot say anything but numbers and known words.
    forged = client.get(f"/contacts/{master.id}?merged=1&moved=<b>hi</b>:3,leads:x&took=evil")
    assert "<b>hi" not in forged.text
    assert "Merged contact 1 into this one. It had no history to move." in text_of(forged.text)


# ------------------------------------------------------------------ rules


def test_administrators_make_and_publish_rules_and_others_only_read_them(
    client: TestClient, world: World, db: Session
) -> None:
    csrf = client_sign_in(client, "root_admin")
    shown = client.get("/admin/duplicate-rules")
    assert shown.status_code == 200
    assert 'id="new-rule"' in shown.text
    assert 'href="/admin/duplicate-rules"' in client.get("/admin").text
    rule = {
        "csrf": csrf,
        "name": "Same name and company",
        "record_type": "contact",
        "field_0": "last_name",
        "match_0": "exact",
        "ignore_case_0": "true",
        "field_2": "company",
        "match_2": "first",
        "length_2": "",
        "ignore_case_2": "true",
        "ignore_blank": "true",
        "published": "true",
    }
    rules = _count(db, DuplicateRule)
    no_length = client.post("/admin/duplicate-rules", data=rule)
    assert no_length.status_code == 422
    assert 'id="row_2-error"' in no_length.text  # the third row, where it was typed
    assert "needs a length from 1 to 100" in text_of(no_length.text)
    assert 'value="Same name and company"' in no_length.text
    none = client.post(
        "/admin/duplicate-rules", data={"csrf": csrf, "name": "Empty", "record_type": "lead"}
    )
    assert none.status_code == 422
    assert 'id="conditions-error"' in none.text
    made = client.post(
        "/admin/duplicate-rules", data={**rule, "length_2": "5"}, follow_redirects=False
    )
    assert made.status_code == 303
    listed = text_of(client.get("/admin/duplicate-rules").text)
    assert (
        "same last name (ignoring case), same first 5 characters of company (ignoring case)"
        in listed
    )
    taken = client.post("/admin/duplicate-rules", data={**rule, "length_2": "5"})
    assert taken.status_code == 409
    assert 'id="name-error"' in taken.text
    assert _count(db, DuplicateRule) == rules + 1

    made_rule = db.scalars(select(DuplicateRule).where(DuplicateRule.name == rule["name"])).one()
    builtin = db.scalars(
        select(DuplicateRule).where(DuplicateRule.builtin, DuplicateRule.record_type == "lead")
    ).one()
    off = client.post(
        f"/admin/duplicate-rules/{builtin.id}/published",
        data={"csrf": csrf, "published": "false"},
        follow_redirects=False,
    )
    assert off.status_code == 303
    db.expire_all()
    assert not db.get_one(DuplicateRule, builtin.id).published
    kept = client.post(f"/admin/duplicate-rules/{builtin.id}/delete", data={"csrf": csrf})
    assert kept.status_code == 409
    assert f'id="rule_{builtin.id}-error"' in kept.text

    # A marketer reads the rules, gets no forms, and every change is refused.
    dana_csrf = client_sign_in(client, "dana")
    read = client.get("/admin/duplicate-rules")
    assert read.status_code == 200
    assert 'id="new-rule"' not in read.text
    assert "/published" not in read.text
    assert "Only administrators may change the rules." in text_of(read.text)
    for url, data in (
        ("/admin/duplicate-rules", {**rule, "name": "Sneaky", "length_2": "5"}),
        (f"/admin/duplicate-rules/{made_rule.id}/published", {"published": "false"}),
        (f"/admin/duplicate-rules/{made_rule.id}/delete", {}),
    ):
        refused = client.post(url, data={**data, "csrf": dana_csrf})
        assert refused.status_code == 403, url
    db.expire_all()
    assert _count(db, DuplicateRule) == rules + 1
    assert db.get_one(DuplicateRule, made_rule.id).published


# ------------------------------------------------------------------ browser


def test_a_marketer_finds_a_pair_and_merges_it_by_clicking(
    page: Page, world: World, live: Live, session_factory: sessionmaker[Session]
) -> None:
    sign_in(page, "dana")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Duplicates").click()
    page.get_by_role("button", name="Find duplicates").click()
    expect(page.locator("#job-state")).to_have_text("Waiting to start")
    found = re.search(r"/duplicates/jobs/(\d+)$", page.url)
    assert found, page.url
    duplicates.run_job(session_factory, int(found.group(1)))
    # The state area polls and shows the pairs without a reload.
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#pair-count")).to_contain_text("1 pair you may see now")
    shot(page, "duplicates-pairs", live)
    page.get_by_role("link", name="Merge Greta Germanicus-Neu into Greta Germanicus").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Merge two contacts")
    page.get_by_label("Germanicus-Neu (keep the duplicate's last name)").check()
    shot(page, "duplicates-merge", live)
    page.get_by_role("button", name="Merge into Greta Germanicus").click()
    expect(page).to_have_url(re.compile(rf"/contacts/{world.greta.id}\?merged="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Greta Germanicus-Neu")
    expect(page.locator("#merged-notice")).to_contain_text("Moved to it: 1 registration.")
    expect(page.get_by_role("link", name="Spring webinar")).to_be_visible()
