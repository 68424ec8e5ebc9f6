"""``gatherly duplicates``: duplicate-detection rules, duplicate jobs and merge (SPEC B8).

Rules are installation settings, changed by the operator at the command line (audited as
the system); looking for duplicates and merging act as the ``--as`` user, as the API does.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gatherly.capture import duplicates, forms, merge
from gatherly.capture import schemas as s
from gatherly.clitools import AsOpt, JsonOpt, acting, every_page, print_json, read_input, validated
from gatherly.contact import matching
from gatherly.contact.models import DuplicateRule
from gatherly.core.config import Settings
from gatherly.core.db import make_engine, make_session_factory, session_scope
from gatherly.core.exceptions import ValidationFailed
from gatherly.core.ids import MAX_ID
from gatherly.jobs.queue import Jobs

app = typer.Typer(
    help="Duplicate detection rules, duplicate jobs and merging records.", no_args_is_help=True
)
out = Console()
RuleArg = Annotated[int, typer.Argument(help="Rule id.", min=1, max=MAX_ID)]
TypeOpt = Annotated[str, typer.Option("--type", help="contact or lead.")]


def _rule_out(rule: DuplicateRule) -> dict[str, Any]:
    return s.RuleOut.model_validate(rule).model_dump(mode="json")


def parse_condition(text: str) -> dict[str, Any]:
    """``email``, ``last_name:first:4``, ``phone:last:6``; ``:case`` makes it case-sensitive."""
    parts = text.strip().split(":")
    cond: dict[str, Any] = {"field": parts[0], "match": "exact", "ignore_case": True}
    rest = parts[1:]
    if rest and rest[-1] == "case":
        cond["ignore_case"] = False
        rest = rest[:-1]
    if rest:
        if rest[0] not in ("first", "last") or len(rest) != 2 or not rest[1].isdigit():
            raise ValidationFailed(
                f"{text!r} is not FIELD, FIELD:first:N or FIELD:last:N (then :case to compare "
                "case)",
                field="condition",
            )
        cond["match"], cond["length"] = rest[0], int(rest[1])
    return cond


def _print_rules(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "type", "name", "published", "compares")
    for r in rows:
        rule = matching.Rule(
            r["id"], r["name"], r["record_type"], tuple(r["conditions"]), r["ignore_blank"], False
        )
        table.add_row(
            str(r["id"]),
            r["record_type"],
            escape(r["name"]) + (" (built-in)" if r["builtin"] else ""),
            "yes" if r["published"] else "no",
            escape(rule.describe()),
        )
    out.print(table)


@app.command("rules")
def rules_command(
    record_type: Annotated[str | None, typer.Option("--type", help="contact or lead.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Every duplicate detection rule."""
    with session_scope(Settings().database_url) as db:
        data = [
            _rule_out(r)
            for r in matching.list_rules(db=db, principal=None, record_type=record_type)
        ]
    print_json(data) if as_json else _print_rules(data)


@app.command("rule-add")
def rule_add_command(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    condition: Annotated[
        list[str],
        typer.Option(
            "--condition",
            help="FIELD, FIELD:first:N or FIELD:last:N, then :case to compare case "
            "(repeat: every condition must hold).",
        ),
    ],
    record_type: TypeOpt = "contact",
    publish: Annotated[bool, typer.Option(help="Publish it at once.")] = False,
    match_blanks: Annotated[
        bool, typer.Option("--match-blanks", help="Blank values match each other.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make a duplicate detection rule (unpublished unless --publish)."""
    body = validated(
        s.RuleIn,
        name=name,
        record_type=record_type,
        conditions=[parse_condition(c) for c in condition],
        ignore_blank=not match_blanks,
        published=publish,
    )
    with session_scope(Settings().database_url) as db:
        rule = matching.save_rule(
            db=db,
            principal=None,
            name=body.name,
            record_type=body.record_type,
            conditions=[c.model_dump() for c in body.conditions],
            ignore_blank=body.ignore_blank,
            published=body.published,
        )
        data = _rule_out(rule)
    if as_json:
        print_json(data)
        return
    out.print(f"made rule {data['name']!r} (id {data['id']})", markup=False)


def _publish(rule_id: int, published: bool) -> None:
    with session_scope(Settings().database_url) as db:
        rule = matching.save_rule(db=db, principal=None, rule_id=rule_id, published=published)
        out.print(
            f"rule {rule.name!r} is {'published' if published else 'unpublished'}",
            markup=False,
        )


@app.command("publish")
def publish_command(rule_id: RuleArg) -> None:
    """Use a rule when people arrive and in duplicate jobs."""
    _publish(rule_id, True)


@app.command("unpublish")
def unpublish_command(rule_id: RuleArg) -> None:
    """Stop using a rule."""
    _publish(rule_id, False)


@app.command("rule-delete")
def rule_delete_command(rule_id: RuleArg) -> None:
    """Delete a rule (the built-in ones can only be unpublished)."""
    with session_scope(Settings().database_url) as db:
        matching.delete_rule(db=db, principal=None, rule_id=rule_id)
    out.print(f"deleted rule {rule_id}")


def _pair_out(pair: duplicates.Pair) -> dict[str, Any]:
    return s.PairOut.model_validate(pair).model_dump(mode="json")


def _print_pairs(rows: list[dict[str, Any]]) -> None:
    table = Table("pair", "record", "duplicate", "rule")
    for p in rows:
        a, b = p["record"], p["duplicate"]
        table.add_row(
            str(p["id"]),
            escape(f"{a['id']}: {a['first_name']} {a['last_name']} <{a['email'] or ''}>"),
            escape(f"{b['id']}: {b['first_name']} {b['last_name']} <{b['email'] or ''}>"),
            escape(p["rule_name"]),
        )
    out.print(table)


@app.command("detect")
def detect_command(
    as_user: AsOpt,
    record_type: TypeOpt = "contact",
    rule: Annotated[
        list[int] | None, typer.Option("--rule", help="Use this rule (repeat); default: published.")
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Queue it for the worker instead of running it here.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Look for duplicates among the records the user may read, and list the pairs."""
    body = validated(s.JobIn, record_type=record_type, rule_ids=rule or None)
    settings = Settings()
    with acting(as_user) as (db, principal):
        job = duplicates.start_job(
            db=db,
            principal=principal,
            record_type=body.record_type,
            rule_ids=body.rule_ids,
            queue=Jobs(settings) if queue else None,
        )
        job_id = job.id
    if queue:
        out.print(f"queued duplicate job {job_id}; `gatherly duplicates pairs {job_id}` lists it")
        return
    engine = make_engine(settings.database_url)
    try:
        duplicates.run_job(make_session_factory(engine), job_id)
    finally:
        engine.dispose()
    _pairs(job_id, as_user, as_json)


def _pairs(job_id: int, as_user: str, as_json: bool) -> None:
    with acting(as_user) as (db, principal):
        job = duplicates.get_job(db=db, principal=principal, job_id=job_id)

        def fetch(cursor: str | None) -> Any:
            return duplicates.pairs(
                db=db, principal=principal, job_id=job_id, cursor=cursor, limit=500
            )[1]

        rows = [_pair_out(p) for p in every_page(fetch)]
        state = job.state
    if as_json:
        print_json(rows)
        return
    if state != "done":
        out.print(f"job {job_id} is {state}")
        return
    if not rows:
        out.print(f"job {job_id} found no duplicates you may read")
        return
    _print_pairs(rows)


@app.command("pairs")
def pairs_command(
    job_id: Annotated[int, typer.Argument(help="Job id.", min=1, max=MAX_ID)],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """The pairs a job found whose two records the user may read."""
    _pairs(job_id, as_user, as_json)


@app.command("merge")
def merge_command(
    master_id: Annotated[int, typer.Argument(help="The record to keep.", min=1, max=MAX_ID)],
    duplicate_id: Annotated[
        int, typer.Argument(help="The record merged into it.", min=1, max=MAX_ID)
    ],
    as_user: AsOpt,
    record_type: TypeOpt = "contact",
    take: Annotated[
        list[str] | None,
        typer.Option("--take", help="Copy this field from the duplicate (repeat)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Merge a duplicate into a master record (needs write on both); audited."""
    body = validated(
        s.MergeIn,
        record_type=record_type,
        master_id=master_id,
        duplicate_id=duplicate_id,
        take=take or [],
    )
    with acting(as_user) as (db, principal):
        done = merge.merge(
            db=db,
            principal=principal,
            record_type=body.record_type,
            master_id=body.master_id,
            duplicate_id=body.duplicate_id,
            take=body.take,
        )
        data = s.MergedOut.model_validate(done, from_attributes=True).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    moved = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in data["moved"].items()) or "nothing"
    out.print(f"merged {record_type} {duplicate_id} into {master_id}; moved: {moved}", markup=False)


# ------------------------------------------------------------------ gatherly forms

forms_app = typer.Typer(
    help="Marketing forms and pages: make them, take them live, embed them, read what people sent.",
    no_args_is_help=True,
)
pages_app = typer.Typer(help="Marketing pages at /p/{slug}.", no_args_is_help=True)
forms_app.add_typer(pages_app, name="pages")
FormArg = Annotated[int, typer.Argument(help="Form id.", min=1, max=MAX_ID)]
PageArg = Annotated[int, typer.Argument(help="Page id.", min=1, max=MAX_ID)]


def _read_spec(path: Path) -> dict[str, Any]:
    text = read_input(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"cannot read {path}: {exc}", field="file") from None
    if not isinstance(data, dict):
        raise ValidationFailed("the file must hold a mapping of the form's settings", field="file")
    return data


def _form_out(row: Any) -> dict[str, Any]:
    return s.FormOut.model_validate(row).model_dump(mode="json")


@forms_app.command("list")
def forms_list(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The forms the user may read."""
    with acting(as_user) as (db, principal):
        rows = [
            _form_out(r)
            for r in every_page(
                lambda cursor: forms.list_forms(
                    db=db, principal=principal, cursor=cursor, limit=500
                )
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "state", "fields", "on submit")
    for r in rows:
        table.add_row(
            str(r["id"]), escape(r["name"]), r["state"], str(len(r["fields"])), r["on_submit"]
        )
    out.print(table)


@forms_app.command("create")
def forms_create(
    file: Annotated[
        Path, typer.Argument(help="The form's settings, YAML or JSON ('-': standard input).")
    ],
    as_user: AsOpt,
    as_json: JsonOpt = False,
) -> None:
    """Make a draft form owned by the user from a file (name, fields, consents, on_submit …)."""
    spec = _read_spec(file)
    with acting(as_user) as (db, principal):
        data = _form_out(forms.create_form(db=db, principal=principal, form_in=spec))
    if as_json:
        print_json(data)
        return
    out.print(f"made draft form {data['name']!r} (id {data['id']})", markup=False)


def _form_state(form_id: int, as_user: str, state: str) -> None:
    with acting(as_user) as (db, principal):
        row = forms.set_form_state(db=db, principal=principal, form_id=form_id, state=state)
        out.print(f"form {row.name!r} is {row.state}", markup=False)


@forms_app.command("live")
def forms_live(form_id: FormArg, as_user: AsOpt) -> None:
    """Take a form live: it takes submissions."""
    _form_state(form_id, as_user, "live")


@forms_app.command("draft")
def forms_draft(form_id: FormArg, as_user: AsOpt) -> None:
    """Take a form back to draft: it refuses submissions."""
    _form_state(form_id, as_user, "draft")


@forms_app.command("embed")
def forms_embed(form_id: FormArg, as_user: AsOpt) -> None:
    """Print the HTML to paste into any website."""
    with acting(as_user) as (db, principal):
        html = forms.embed(db=db, principal=principal, settings=Settings(), form_id=form_id)
    sys.stdout.write(html)


@forms_app.command("submissions")
def forms_submissions(form_id: FormArg, as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """What people sent through a form (those the user may read), newest first."""
    with acting(as_user) as (db, principal):
        rows = [
            s.SubmissionOut.model_validate(r).model_dump(mode="json")
            for r in every_page(
                lambda cursor: forms.list_submissions(
                    db=db, principal=principal, form_id=form_id, cursor=cursor, limit=500
                )
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "sent", "email", "state", "outcome")
    for r in rows:
        table.add_row(
            str(r["id"]),
            r["submitted_at"][:19],
            escape(str(r["data"].get("email", ""))),
            r["state"],
            escape(r["outcome"] or r["error"]),
        )
    out.print(table)


@forms_app.command("process")
def forms_process() -> None:
    """Process the submissions waiting now, here (the worker does this on its own)."""
    engine = make_engine(Settings().database_url)
    try:
        factory = make_session_factory(engine)
        done = 0
        for submission_id in forms.pending(factory):
            forms.process_submission(factory, submission_id)
            done += 1
    finally:
        engine.dispose()
    out.print(f"processed {done} submission{'s' if done != 1 else ''}")


@pages_app.command("list")
def pages_list(as_user: AsOpt, as_json: JsonOpt = False) -> None:
    """The pages the user may read."""
    with acting(as_user) as (db, principal):
        rows = [
            s.PageOut.model_validate(r).model_dump(mode="json")
            for r in every_page(
                lambda cursor: forms.list_pages(
                    db=db, principal=principal, cursor=cursor, limit=500
                )
            )
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("id", "name", "address", "state", "form")
    for r in rows:
        table.add_row(
            str(r["id"]), escape(r["name"]), f"/p/{r['slug']}", r["state"], str(r["form_id"] or "")
        )
    out.print(table)


@pages_app.command("create")
def pages_create(
    name: Annotated[str, typer.Argument(help="What to call it.")],
    slug: Annotated[str, typer.Option(help="Its address: /p/SLUG.")],
    as_user: AsOpt,
    form: Annotated[int | None, typer.Option(help="The form it shows.", min=1)] = None,
    title: Annotated[str, typer.Option(help="The heading visitors see.")] = "",
    body: Annotated[
        Path | None, typer.Option(help="A text file: paragraphs split by blank lines.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a draft page owned by the user."""
    text = ""
    if body is not None:
        try:
            text = body.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"cannot read {body}: {exc}", field="body") from None
    spec = {"name": name, "slug": slug, "title": title, "body": text, "form_id": form}
    with acting(as_user) as (db, principal):
        row = forms.create_page(
            db=db, principal=principal, page_in={k: v for k, v in spec.items() if v is not None}
        )
        data = s.PageOut.model_validate(row).model_dump(mode="json")
    if as_json:
        print_json(data)
        return
    out.print(f"made draft page {name!r} at /p/{data['slug']} (id {data['id']})", markup=False)


@pages_app.command("publish")
def pages_publish(page_id: PageArg, as_user: AsOpt) -> None:
    """Publish a page at /p/{slug}."""
    with acting(as_user) as (db, principal):
        row = forms.set_page_state(db=db, principal=principal, page_id=page_id, state="live")
        out.print(f"page {row.name!r} is live at /p/{row.slug}", markup=False)


@pages_app.command("unpublish")
def pages_unpublish(page_id: PageArg, as_user: AsOpt) -> None:
    """Take a page down."""
    with acting(as_user) as (db, principal):
        row = forms.set_page_state(db=db, principal=principal, page_id=page_id, state="draft")
        out.print(f"page {row.name!r} is down", markup=False)
