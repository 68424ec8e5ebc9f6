"""The journey designer's edits (issue 16): adding, changing and removing steps of the tree,
choosing who enters, and the tree as rows — pure functions, no database."""

from __future__ import annotations

from typing import Any

import pytest

from gatherly.core.exceptions import ValidationFailed
from gatherly.journey import definition as jd
from gatherly.journey import design


def follow_up() -> dict[str, Any]:
    """Invite → wait 2 days → opened? yes: a lead; no: a reminder, then a tag."""
    return {
        "audience": {"segments": [], "lists": [4], "exclude_segments": []},
        "start": "invite",
        "steps": {
            "invite": {"type": "send_email", "message_id": 12, "next": "pause"},
            "pause": {"type": "wait", "duration": "P2D", "next": "opened?"},
            "opened?": {
                "type": "condition",
                "test": {"opened": "invite"},
                "yes": "lead",
                "no": "remind",
            },
            "lead": {"type": "create_lead", "topic": "Webinar follow-up"},
            "remind": {"type": "send_email", "message_id": 13, "next": "tag"},
            "tag": {"type": "update_field", "field": "custom.x", "value": "done"},
        },
    }


def sound(definition: dict[str, Any]) -> None:
    """The definition parses and its tree has no structural problem."""
    assert jd.structure(jd.parse(definition)) == []


def refused(where: str, match: str, call: Any, *args: Any, **kw: Any) -> None:
    with pytest.raises(ValidationFailed, match=match) as caught:
        call(*args, **kw)
    assert caught.value.field == where


# ------------------------------------------------------------------ add


def test_a_journey_is_built_from_nothing_one_step_after_another() -> None:
    d, first = design.add_step({}, after=None, step={"type": "send_email", "message_id": 12})
    assert (first, d["start"]) == ("email-1", "email-1")
    d, wait = design.add_step(d, after=first, step={"type": "wait", "duration": "P2D"})
    d, lead = design.add_step(d, after=wait, step={"type": "create_lead", "topic": "Sales"})
    assert (wait, lead) == ("wait-1", "lead-1")
    assert d["steps"] == {
        "email-1": {"type": "send_email", "message_id": 12, "next": "wait-1"},
        "wait-1": {"type": "wait", "duration": "P2D", "next": "lead-1"},
        "lead-1": {"type": "create_lead", "topic": "Sales"},
    }
    sound(d)


def test_a_new_step_takes_over_what_followed_and_names_stay_unique() -> None:
    before = follow_up()
    d, name = design.add_step(before, after="invite", step={"type": "send_email", "message_id": 14})
    assert name == "email-1"
    assert d["steps"]["invite"]["next"] == "email-1"
    assert d["steps"]["email-1"]["next"] == "pause"
    assert list(d["steps"])[:3] == ["invite", "email-1", "pause"]  # the YAML reads in order
    d, again = design.add_step(d, after="email-1", step={"type": "send_email", "message_id": 15})
    assert again == "email-2"
    assert before == follow_up()  # a new dict: the one given is left as it was
    sound(d)


def test_a_new_step_at_the_start_and_on_a_branch() -> None:
    d, first = design.add_step(follow_up(), after=None, step={"type": "wait", "duration": "PT6H"})
    assert d["start"] == first
    assert d["steps"][first]["next"] == "invite"
    d, on_no = design.add_step(
        d, after="opened?", branch="no", step={"type": "add_to_list", "list_id": 4}
    )
    assert d["steps"]["opened?"]["no"] == on_no
    assert d["steps"][on_no] == {"type": "add_to_list", "list_id": 4, "next": "remind"}
    sound(d)


def test_a_new_condition_puts_what_followed_on_its_yes_branch() -> None:
    d, question = design.add_step(
        follow_up(),
        after="pause",
        step={"type": "condition", "test": {"clicked": "invite"}},
    )
    assert question == "question-1"
    assert d["steps"]["pause"]["next"] == question
    assert d["steps"][question]["yes"] == "opened?"
    assert "no" not in d["steps"][question]
    sound(d)


def test_an_end_step_goes_only_where_a_path_ends() -> None:
    d, end = design.add_step(follow_up(), after="lead", step={"type": "end"})
    assert d["steps"]["lead"]["next"] == end
    refused(
        "type",
        "an end step goes only where a path ends",
        design.add_step,
        follow_up(),
        after="invite",
        step={"type": "end"},
    )
    refused("after", "ends its path", design.add_step, d, after=end, step={"type": "end"})


def test_bad_additions_are_refused_by_name() -> None:
    plan = follow_up()
    email = {"type": "send_email", "message_id": 1}
    refused("after", "no step “nowhere”", design.add_step, plan, after="nowhere", step=email)
    refused("branch", "yes or no", design.add_step, plan, after="opened?", step=email)
    refused(
        "branch", "has no yes or no branch", design.add_step, plan, after="invite",
        branch="yes", step=email,
    )  # fmt: skip
    refused("type", "choose what the step does", design.add_step, plan, after=None, step={})
    refused(
        "message_id", "the message is required", design.add_step, plan, after=None,
        step={"type": "send_email"},
    )  # fmt: skip
    refused(
        "duration", "longer than nothing", design.add_step, plan, after=None,
        step={"type": "wait", "duration": "P0D"},
    )  # fmt: skip
    refused(
        "step", "exactly one of duration, until or interaction", design.add_step, plan,
        after=None, step={"type": "wait"},
    )  # fmt: skip
    refused(
        "test", "exactly one of opened", design.add_step, plan, after="pause",
        step={"type": "condition", "test": {}},
    )  # fmt: skip
    refused(
        "test.min_minutes", "the minutes must be at least 0", design.add_step, plan,
        after="pause", step={"type": "condition", "test": {"attended": 3, "min_minutes": -1}},
    )  # fmt: skip
    # A question about an email must name an email sent before it on its path.
    refused(
        "test", "“remind” is no email step before this one", design.add_step, plan,
        after="pause", step={"type": "condition", "test": {"opened": "remind"}},
    )  # fmt: skip
    refused(
        "interaction.step", "“invite” is no email step before this one", design.add_step,
        plan, after=None,
        step={"type": "wait", "interaction": {"step": "invite"}, "timeout": "P3D"},
    )  # fmt: skip
    full = {"start": "s0", "steps": {f"s{i}": {"type": "end"} for i in range(200)}}
    refused("type", "at most 200 steps", design.add_step, full, after=None, step={"type": "end"})


# ------------------------------------------------------------------ edit


def test_editing_a_step_changes_its_settings_and_keeps_its_links() -> None:
    d = design.edit_step(follow_up(), name="pause", fields={"duration": "P3D"})
    assert d["steps"]["pause"] == {"type": "wait", "duration": "P3D", "next": "opened?"}
    # The settings are replaced: a wait for a time becomes a wait for an open.
    d = design.edit_step(
        d,
        name="pause",
        fields={"interaction": {"step": "invite", "kind": "clicked"}, "timeout": "P5D"},
    )
    assert d["steps"]["pause"] == {
        "type": "wait",
        "interaction": {"step": "invite", "kind": "clicked"},
        "timeout": "P5D",
        "next": "opened?",
    }
    d = design.edit_step(d, name="opened?", fields={"test": {"attended": 7, "min_minutes": 30}})
    assert (d["steps"]["opened?"]["yes"], d["steps"]["opened?"]["no"]) == ("lead", "remind")
    assert d["steps"]["opened?"]["test"]["attended"] == 7
    d = design.edit_step(d, name="tag", fields={"field": "company", "value": None})
    assert d["steps"]["tag"] == {"type": "update_field", "field": "company"}
    sound(d)


def test_bad_edits_are_refused_by_name() -> None:
    plan = follow_up()
    refused("name", "no step “ghost”", design.edit_step, plan, name="ghost", fields={})
    refused(
        "type", "keeps what it does", design.edit_step, plan, name="invite",
        fields={"type": "wait", "duration": "P1D"},
    )  # fmt: skip
    refused(
        "next", "by adding and removing", design.edit_step, plan, name="invite",
        fields={"message_id": 3, "next": "tag"},
    )  # fmt: skip
    refused(
        "field", "field is one of first_name", design.edit_step, plan, name="tag",
        fields={"field": "colour", "value": "red"},
    )  # fmt: skip
    refused(
        "topic", "the topic is too long", design.edit_step, plan, name="lead",
        fields={"topic": "x" * 301},
    )  # fmt: skip
    refused(
        "colour", "no setting of this kind of step", design.edit_step, plan, name="lead",
        fields={"colour": "red"},
    )  # fmt: skip
    refused(
        "test", "“remind” is no email step before this one", design.edit_step, plan,
        name="opened?", fields={"test": {"opened": "remind"}},
    )  # fmt: skip


# ------------------------------------------------------------------ remove


def test_removing_a_step_splices_it_out() -> None:
    d, removed = design.remove_step(follow_up(), name="pause")
    assert removed == ["pause"]
    assert d["steps"]["invite"]["next"] == "opened?"
    d, removed = design.remove_step(d, name="tag")  # the last of its path
    assert "next" not in d["steps"]["remind"]
    sound(d)


def test_removing_the_start_moves_the_start() -> None:
    plan = follow_up()
    plan["steps"]["opened?"]["test"] = {"segment": 3}  # nothing asks about "invite" now
    d, _ = design.remove_step(plan, name="invite")
    assert d["start"] == "pause"
    d, _ = design.remove_step({"start": "a", "steps": {"a": {"type": "end"}}}, name="a")
    assert d == {"steps": {}}


def test_removing_a_condition_removes_its_branches_and_says_which() -> None:
    d, removed = design.remove_step(follow_up(), name="opened?")
    assert removed == ["opened?", "lead", "remind", "tag"]
    assert set(d["steps"]) == {"invite", "pause"}
    assert "next" not in d["steps"]["pause"]
    sound(d)
    rows = design.tree(follow_up())
    assert next(r for r in rows if r.name == "opened?").below == 3


def test_a_removal_that_would_leave_a_question_about_a_gone_email_is_refused() -> None:
    refused(
        "name", "“opened\\?” asks about the email of “invite”", design.remove_step,
        follow_up(), name="invite",
    )  # fmt: skip
    refused("name", "no step “ghost”", design.remove_step, follow_up(), name="ghost")


def test_removing_from_a_hand_written_loop_keeps_what_comes_before() -> None:
    looped = {
        "start": "a",
        "steps": {
            "a": {"type": "wait", "duration": "P1D", "next": "q"},
            "q": {"type": "condition", "test": {"segment": 1}, "yes": "b", "no": "a"},
            "b": {"type": "end"},
        },
    }
    d, removed = design.remove_step(looped, name="q")
    assert removed == ["q", "b"]
    assert d == {"start": "a", "steps": {"a": {"type": "wait", "duration": "P1D"}}}


# ------------------------------------------------------------------ audience


def test_who_enters_is_set_by_audience_or_by_trigger() -> None:
    d = design.set_audience(follow_up(), audience={"segments": [3], "exclude_segments": [7]})
    assert d["audience"] == {"segments": [3], "lists": [], "exclude_segments": [7]}
    assert d["steps"] == follow_up()["steps"]
    d = design.set_audience(d, audience={"exclude_segments": [7]}, trigger={"attended": 5})
    assert (d["trigger"], d["audience"]["segments"]) == ({"attended": 5}, [])
    d = design.set_audience(d, audience={"lists": [4]})
    assert "trigger" not in d
    refused("trigger", "exactly one of", design.set_audience, d, audience={}, trigger={})
    refused(
        "audience.segments", "must be at least 1", design.set_audience, d,
        audience={"segments": [0]},
    )  # fmt: skip


# ------------------------------------------------------------------ durations and the tree


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2 days", "P2D"),
        ("P2D", "P2D"),
        ("p2d", "P2D"),
        ("PT6H", "PT6H"),
        ("6 hours", "PT6H"),
        ("1 day 6 hours", "P1DT6H"),
        ("1 day, 12 hours", "P1DT12H"),
        ("90 min", "PT1H30M"),
        ("3w", "P21D"),
        ("1 week and 2 days", "P9D"),
    ],
)
def test_a_duration_is_read_in_words_or_iso(text: str, iso: str) -> None:
    assert design.parse_duration(text) == iso


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "give a duration"),
        ("soon", "is no duration"),
        ("2 fortnights", "is no duration"),
        ("P", "is no duration"),
        ("0 days", "longer than nothing"),
        ("4000 days", "at most 3650 days"),
        ("1 day " * 100, "is no duration"),
    ],
)
def test_a_bad_duration_says_how_to_write_one(text: str, match: str) -> None:
    refused("timeout", match, design.parse_duration, text, field="timeout")


def test_durations_read_back_in_words() -> None:
    assert [
        design.duration_words(v) for v in ("P2D", "P1DT6H", "PT1H30M", "P14D", "PT1M", None)
    ] == ["2 days", "1 day 6 hours", "1 hour 30 minutes", "2 weeks", "1 minute", ""]


def test_the_tree_lists_steps_in_path_order_with_depth_branch_and_summary() -> None:
    plan = follow_up()
    plan["steps"]["tag"]["next"] = "list"
    plan["steps"]["list"] = {"type": "add_to_list", "list_id": 4, "next": "done"}
    plan["steps"]["done"] = {"type": "end"}
    names = {("message", 12): "Webinar recording"}
    rows = design.tree(plan, names)
    assert [(r.name, r.depth, r.branch, r.summary) for r in rows] == [
        ("invite", 0, None, "Send email “Webinar recording”"),
        ("pause", 0, None, "Wait 2 days"),
        ("opened?", 0, None, "If opened “invite” — yes / no"),
        ("lead", 1, "yes", "Create a lead: Webinar follow-up"),
        ("remind", 1, "no", "Send email message #13"),
        ("tag", 1, None, "Set custom.x to done"),
        ("list", 1, None, "Add to list #4"),
        ("done", 1, None, "End"),
    ]
    assert rows[4].emails_before == ("invite",)
    assert (rows[5].after, rows[5].link) == ("remind", "next")
    assert all(r.reached for r in rows)


@pytest.mark.parametrize(
    ("step", "said"),
    [
        ({"type": "wait", "until": "2026-12-07T09:00:00Z"}, "Wait until 2026-12-07 09:00 UTC"),
        (
            {"type": "wait", "interaction": {"step": "e", "kind": "clicked"}, "timeout": "P3D"},
            "Wait until the contact clicks in “e” (at most 3 days)",
        ),
        ({"type": "condition", "test": {"attended": 5, "min_minutes": 30}},
         "If attended “Launch” for at least 30 minutes — yes / no"),
        ({"type": "condition", "test": {"registered": 6}}, "If registered for event #6 — yes / no"),
        ({"type": "condition", "test": {"segment": 2}}, "If in segment “VIPs” — yes / no"),
        ({"type": "condition", "test": {"field": "country", "value": "DE"}},
         "If country is “DE” — yes / no"),
        ({"type": "condition", "test": {"field": "custom.x", "op": "empty"}},
         "If custom.x is empty — yes / no"),
        ({"type": "create_lead"}, "Create a lead"),
        ({"type": "remove_from_list", "list_id": 4}, "Remove from list “Webinar people”"),
        ({"type": "update_field", "field": "company"}, "Clear company"),
    ],
)  # fmt: skip
def test_each_kind_of_step_has_a_summary(step: dict[str, Any], said: str) -> None:
    names = {("event", 5): "Launch", ("segment", 2): "VIPs", ("list", 4): "Webinar people"}
    assert design.summary(step, names) == said


def test_steps_the_start_does_not_reach_come_last_and_say_so() -> None:
    plan = follow_up()
    plan["steps"]["stray"] = {"type": "end"}
    rows = design.tree(plan)
    assert (rows[-1].name, rows[-1].reached) == ("stray", False)
    assert design.tree({}) == []


def test_who_enters_in_a_sentence_and_what_a_definition_names() -> None:
    names = {("segment", 3): "Attendees", ("event", 5): "Autumn launch"}
    plan = follow_up()
    plan["audience"] = {"segments": [3], "lists": [4], "exclude_segments": [7]}
    assert design.audience_summary(plan, names) == (
        "Members of segment “Attendees” and list #4, but not members of segment #7."
    )
    plan["trigger"], plan["audience"] = {"attended": 5}, {}
    assert design.audience_summary(plan, names) == (
        "People who attend “Autumn launch” (as the Teams sync records it)."
    )
    assert design.audience_summary({}).startswith("Nobody yet")
    assert design.references(follow_up()) == {
        "message": {12, 13},
        "list": {4},
        "segment": set(),
        "event": set(),
        "model": set(),
    }
