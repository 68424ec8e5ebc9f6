"""Fixture validation (the first problem named by its JSON path) and the sample fixture."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gatherly.linkedin_emulator import FixtureError, LinkedInState, load_fixture, validate_fixture
from gatherly.linkedin_emulator.__main__ import main
from tests.linkedin_emulator import fixture as fx

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "linkedin-sample.json"
GENERATOR = ROOT / "examples" / "make_linkedin_sample.py"
GRAPH_SAMPLE = ROOT / "examples" / "sample-tenant.json"


def _broken(change: Callable[[dict[str, Any]], Any]) -> str:
    data = fx.build()
    change(data)
    with pytest.raises(FixtureError) as caught:
        validate_fixture(data)
    return caught.value.message


def test_the_test_fixture_is_valid() -> None:
    parsed = validate_fixture(fx.build())
    assert len(parsed.responses) == fx.SPONSORED_COUNT + 4
    company = next(r for r in parsed.responses if r.id == "company-0")
    assert company.version == 1  # defaults: the form's latest version and owner
    assert company.owner is not None
    assert company.owner.urn == fx.ORG


def test_shape_problems_name_their_path() -> None:
    assert _broken(lambda d: d["application"].pop("client_secret")) == (
        "application.client_secret: missing"
    )
    assert _broken(lambda d: d.update(extra=1)) == "extra: unknown property"
    assert _broken(lambda d: d["members"][1].update(ad_accounts=["508777001"])) == (
        "members[1].ad_accounts[0]: not an ad account URN (urn:li:sponsoredAccount:{number})"
    )
    message = _broken(lambda d: d["responses"][4].update(leadType="sponsored"))
    assert message.startswith("responses[4].leadType: input should be 'SPONSORED'")
    assert _broken(lambda d: d["forms"][0]["versions"][1]["questions"][0].pop("question")) == (
        "forms[0].versions[1].questions[0].question: missing"
    )
    assert _broken(lambda d: d["responses"][2].update(form="7042")).startswith(
        "responses[2].form: input should be a valid integer"
    )

    def both_owners(d: dict[str, Any]) -> None:
        d["forms"][1]["owner"]["organization"] = fx.ORG

    assert _broken(both_owners) == (
        "forms[1].owner: exactly one of 'sponsoredAccount' or 'organization'"
    )
    assert _broken(lambda d: d["forms"][0]["versions"][0]["questions"][1].update(
        predefinedField="email"
    )).startswith("forms[0].versions[0].questions[1].predefinedField: not an upper-case")  # fmt: skip


def test_cross_references_name_their_path() -> None:
    assert _broken(lambda d: d["responses"][3].update(id=fx.response_id(1))) == (
        f"responses[3].id: duplicate {fx.response_id(1)!r}"
    )
    assert _broken(lambda d: d["members"][1].update(id=fx.KEIKO)) == (
        f"members[1].id: duplicate {fx.KEIKO!r}"
    )
    assert _broken(lambda d: d["responses"][0].update(form=9999)) == (
        "responses[0].form: unknown form 9999"
    )
    assert _broken(lambda d: d["responses"][0].update(version=3)) == (
        "responses[0].version: form 7042 has no version 3"
    )
    assert _broken(lambda d: d["responses"][1]["answers"].update({"7": "x"})) == (
        "responses[1].answers.7: not a question of form 7042 version 1"
    )
    assert _broken(lambda d: d["responses"][1]["answers"].update({"6": [3]})) == (
        "responses[1].answers.6[0]: option 3 is not an option of question 6"
    )
    assert _broken(lambda d: d["responses"][1]["answers"].update({"6": "AI"})) == (
        "responses[1].answers.6: question 6 is multiple choice: the answer is a list of option ids"
    )
    assert _broken(lambda d: d["responses"][1]["answers"].update({"1": ["Keiko"]})) == (
        "responses[1].answers.1: question 1 is free text: the answer is a string"
    )
    assert _broken(lambda d: d["responses"][1]["consents"].update({"2": True})) == (
        "responses[1].consents.2: not a consent of form 7042 version 1"
    )
    assert _broken(lambda d: d["responses"][1].update(owner={"sponsoredAccount": fx.OTHER_ACCOUNT})) == (
        f"responses[1].owner: form 7042 is owned by {fx.ACCOUNT}"
    )  # fmt: skip
    company = fx.SPONSORED_COUNT
    assert _broken(lambda d: d["responses"][company].update(leadType="SPONSORED")) == (
        f"responses[{company}].leadType: a form owned by {fx.ORG} takes EVENT, COMPANY or "
        "ORGANIZATION_PRODUCT"
    )
    assert _broken(lambda d: d["responses"][company].update(consents={"1": False})) == (
        f"responses[{company}].consents.1: consent 1 is required: a response always accepts it"
    )
    assert _broken(lambda d: d["members"][1].update(organizations=[])) == (
        f"forms[2].owner.organization: no member holds a role on {fx.ORG}"
    )

    def same_question_twice(d: dict[str, Any]) -> None:
        questions = d["forms"][0]["versions"][0]["questions"]
        questions[2]["questionId"] = 1

    assert _broken(same_question_twice) == (
        "forms[0].versions[0].questions[2].questionId: duplicate 1"
    )


def test_load_fixture_reports_unreadable_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(FixtureError, match="is not JSON"):
        load_fixture(bad)
    with pytest.raises(FixtureError, match="cannot read fixture"):
        load_fixture(tmp_path / "missing.json")


def test_sample_loads_and_matches_the_brief() -> None:
    data = load_fixture(SAMPLE)
    state = LinkedInState(data)
    members = state.world.members
    assert len(members) == 2
    assert len({a for m in members for a in m.ad_accounts}) == 2
    assert len({o for m in members for o in m.organizations}) == 1
    forms = state.world.forms
    assert len(forms) == 3
    edited = [f for f in forms if len(f.versions) == 2]
    assert len(edited) == 1
    first, second = ({q.question_id for q in v.questions} for v in edited[0].versions)
    assert not first & second  # the new version's questions were renumbered
    org_forms = [f for f in forms if f.owner.organization]
    assert len(org_forms) == 1
    responses = state.world.responses
    assert 35 <= len(responses) <= 45
    assert sum(r.test_lead for r in responses) == 3
    assert {r.lead_type for r in responses if r.form == org_forms[0].id} == {"COMPANY"}
    times = [r.submitted_at for r in responses]
    assert len(times) != len(set(times))  # two responses in the same millisecond

    email_questions = {
        (f.id, v.version_id): {q.question_id for q in v.questions if q.predefined_field == "EMAIL"}
        for f in forms
        for v in f.versions
    }
    emails = {
        answer.lower()
        for r in responses
        for key, answer in r.answers.items()
        if int(key) in email_questions[(r.form, r.version or 0)]
    }
    tenant = json.loads(GRAPH_SAMPLE.read_text(encoding="utf-8"))
    registered = {
        reg["email"].lower() for w in tenant["webinars"] for reg in w.get("registrations", [])
    }
    assert 3 <= len(emails & registered) <= 8


def test_the_module_refuses_a_bad_fixture(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--fixture", str(tmp_path / "missing.json")]) == 1
    assert "cannot read fixture" in capsys.readouterr().err


def test_generator_reproduces_the_sample(tmp_path: Path) -> None:
    out = tmp_path / "sample.json"
    subprocess.run([sys.executable, str(GENERATOR), str(out)], check=True)  # noqa: S603
    assert out.read_bytes() == SAMPLE.read_bytes()
