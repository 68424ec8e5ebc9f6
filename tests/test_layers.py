"""Imports go down only (docs/decisions.md): read off the source, so a new module that
breaks the layering fails here rather than in review."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "gatherly"
DOMAINS = ("org", "access", "contact", "event", "teams", "segment", "graph", "jobs")
INTERFACES = ("api", "web", "cli", "clitools", "app", "demo")


def _imports(path: Path) -> set[str]:
    """Every ``gatherly.*`` module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {name for name in found if name.startswith("gatherly.")}


def _modules(package: str) -> list[Path]:
    """The package's modules; a domain's ``router.py`` and ``cli.py`` are interfaces (they
    may import the API's and the CLI's helpers) and are left out."""
    base = SRC / package
    if not base.is_dir():
        return [SRC / f"{package}.py"]
    interfaces = () if package in INTERFACES else ("router.py", "cli.py")
    return sorted(p for p in base.rglob("*.py") if p.name not in interfaces)


def _offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    bad = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[1]
            if top in forbidden:
                bad.append(f"{path.relative_to(SRC)} imports {name}")
    return bad


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("core", DOMAINS + INTERFACES),  # core is below every domain
        ("access", ("org", *DOMAINS[2:], *INTERFACES)),  # the policy engine is below org
        ("org", ("contact", "event", "teams", "segment", "jobs", *INTERFACES)),
        ("graph", ("org", "access", "contact", "event", "teams", "segment", "jobs", *INTERFACES)),
        ("graph_emulator", ("graph", "teams", *INTERFACES)),  # the two check each other
        ("linkedin_emulator", ("linkedin", "capture", "contact", *INTERFACES)),  # likewise
        ("contact", ("teams", "segment", "jobs", *INTERFACES)),
        ("event", ("teams", "segment", "jobs", *INTERFACES)),
        ("segment", ("teams", *INTERFACES)),
        ("teams", ("segment", "api", "web", "app", "demo")),
        ("api", ("web", "cli", "app")),  # the API knows nothing of pages
    ],
)
def test_imports_go_down_only(package: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(package, forbidden) == []


def test_the_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from gatherly.org import directory\n", encoding="utf-8")
    assert "gatherly.org.directory" in _imports(module)


SQL = {"select", "insert", "update", "delete", "text", "func", "and_", "or_"}


def _sql_imports(path: Path) -> set[str]:
    """The SQL-building names ``path`` imports from SQLAlchemy."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found.update(a.name for a in node.names if a.name in SQL)
    return found


def test_pages_and_commands_hold_no_sql() -> None:
    """Thin interfaces: pages and commands call services (which is also why their suites
    run on SQLite alone: tests/conftest.py). The web's session store is the one exception."""
    interfaces = [p for p in (SRC / "web").glob("*.py") if p.name != "auth.py"]
    interfaces += [*SRC.glob("*/cli.py"), SRC / "cli.py", SRC / "clitools.py"]
    offenders = {
        str(path.relative_to(SRC)): found for path in interfaces if (found := _sql_imports(path))
    }
    assert offenders == {}
