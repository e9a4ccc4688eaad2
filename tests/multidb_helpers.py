"""What the tests of multi-database folders share: the databases of ``tests/apps/multidb``
(and ``legacymulti``), reading a revision file's functions, and three PostgreSQL databases.

tests/conftest.py loads this module as a plugin, so its fixture is there for every module.
"""
from __future__ import annotations

import ast
import secrets
from pathlib import Path
from typing import Iterator

import pytest

#: Database name ("" is the default database) -> its model's table, in tests/apps/multidb.
TABLES = {"": "setting", "users": "account", "logs": "event"}
#: Database name -> the column MODEL_VERSION=2 adds to its table.
NEW_COLUMNS = {"": "value", "users": "email", "logs": "level"}
#: Database name -> the environment variable holding its URL.
URL_VARIABLES = {"": "DATABASE_URL", "users": "USERS_URL", "logs": "LOGS_URL"}
#: The environment that moves the test applications' models to their second version.
V2 = {"MODEL_VERSION": "2"}


def read_revision(path: Path) -> tuple[str, str | None, dict[str, str]]:
    """``(revision, down_revision, {function name: its source})`` of a revision file."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    identifiers: dict[str, str | None] = {}
    functions: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if isinstance(node.value, ast.Constant):
                identifiers[node.targets[0].id] = node.value.value
        elif isinstance(node, ast.FunctionDef):
            functions[node.name] = ast.get_source_segment(text, node) or ""
    revision = identifiers["revision"]
    assert isinstance(revision, str), text
    return revision, identifiers.get("down_revision"), functions


@pytest.fixture
def three_postgresql_databases(postgresql_server) -> Iterator[dict[str, str]]:
    """Database name -> URL of a new, empty PostgreSQL database, for the three databases."""
    created = {}
    try:
        for name in TABLES:
            dbname = f"t_multidb_{name or 'default'}_{secrets.token_hex(4)}"
            created[dbname] = postgresql_server.create_database(dbname)
        yield dict(zip(TABLES, created.values()))
    finally:
        for dbname in created:
            postgresql_server.drop_database(dbname)
