"""integrations/ knows the counterparts' formats and nothing of Temporal, FastAPI or the database,
and domain/channel_events.py knows no counterpart: the imports say so."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_INTEGRATIONS = (
    "temporalio",
    "fastapi",
    "starlette",
    "services",
    "workflows",
    "activities",
    "app",
    "api",
    "sqlmodel",
    "sqlalchemy",
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path", sorted((ROOT / "integrations").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_integrations_import_no_orchestration_web_or_database(path: Path) -> None:
    assert not imported(path) & set(FORBIDDEN_IN_INTEGRATIONS)


def test_channel_events_import_only_the_domain() -> None:
    project = {"integrations", "services", "workflows", "activities", "app", "api", "core"}
    assert not imported(ROOT / "domain" / "channel_events.py") & project
