"""User-facing text (the API's documentation, CLI help) never shows requirement ids such as
"(T7)" or "SPEC B5": those are for the code and its reviewers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

from gatherly.app import create_app
from gatherly.cli import app as cli_app
from gatherly.core.config import Settings

REQUIREMENT_ID = re.compile(r"\((?:SPEC )?[TBMQ]\d+[^)]*\)|\bSPEC [TBMQ]\d*|§\d")


def _helps(command: Any) -> list[str]:
    """Every help text of a command and, for a group, of everything under it."""
    found = [command.help or "", command.short_help or ""]
    found += [getattr(p, "help", None) or "" for p in command.params]
    for sub in getattr(command, "commands", {}).values():
        found += _helps(sub)
    return found


def test_the_api_documentation_and_cli_help_show_no_requirement_ids(tmp_path: Path) -> None:
    settings = Settings(database_url="sqlite://", queue_path=str(tmp_path / "queue.db"))
    document: Any = create_app(settings).openapi()
    assert REQUIREMENT_ID.findall(json.dumps(document)) == []
    helps = _helps(typer.main.get_command(cli_app))
    assert len(helps) > 100
    assert [h for h in helps if REQUIREMENT_ID.search(h)] == []
    assert REQUIREMENT_ID.search("counted (T7)")  # the check itself sees one
