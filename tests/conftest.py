"""Shared fixtures: a throwaway project per test, and the two command-line front-ends.

Every test that drives a command runs the real CLI in a process of its own, from a copy of one
of the small applications in ``tests/apps/`` rooted at ``tmp_path``:

- ``project`` (or ``make_project(name)``) copies ``tests/apps/<name>`` (with the shared
  ``tests/apps/manage.py`` where the app has none of its own) and gives it a SQLite database
  file; ``project.run(front, *args)`` runs ``flask db ...`` (front ``"flask"``) or
  ``python manage.py db ...`` (front ``"script"``) and returns a :class:`Result`;
- ``front`` is parametrized over ``("flask", "script")``, so a test that takes it runs once
  through each front-end; ``project.db(*args)`` uses the test's ``front``.

Each run is a fork of a warm interpreter that has imported Flask, SQLAlchemy and Alembic once
(:mod:`tests.zygote`), set up as a fresh ``python -m flask`` / ``python manage.py`` would be:
that saves the half second of CPU an interpreter spends starting and importing them.
``FLASK_MIGRATE_TEST_SUBPROCESS=1`` makes every run a real subprocess, as does
``Project(..., subprocess=True)`` for one project's runs; tests about the process itself
(signals, background runs) use ``subprocess`` directly.

Database servers (PostgreSQL, MariaDB) come from :mod:`tests.servers`; the migrations folders of
the guarantee tests from :mod:`tests.guarantee_helpers`; commands run in the background from
:mod:`tests.processes`.
"""
from __future__ import annotations

import os
from importlib import metadata
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pytest
import sqlalchemy as sa

from tests.zygote import Zygotes

# Fixtures of the helper modules, for every test module without importing them one by one.
pytest_plugins = [
    "tests.servers", "tests.guarantee_helpers", "tests.multidb_helpers", "tests.processes",
]

APPS = Path(__file__).parent / "apps"
FRONTS = ("flask", "script")
#: "modern" or "legacy" (SPEC section 1), from the Flask version this interpreter has.
STACK = "legacy" if metadata.version("flask").startswith("1.") else "modern"

#: Fixtures that start a database server: a test that uses one is slow (see pytest.ini).
_SERVER_FIXTURES = frozenset(
    {"postgresql_server", "postgresql_url", "mariadb_server", "mariadb_url"}
)
#: Modules of whole-process scenarios (many processes per test, signals, waits, old folders of
#: every generation): slow as a whole.
_SLOW_MODULES = frozenset({
    "test_boundary", "test_concurrency", "test_examples", "test_faults", "test_guarantees", "test_interrupted",
    "test_legacy", "test_multidb", "test_old_folders", "test_packaging", "test_table_locks",
    "test_workflow",
})
#: Tests run once per row of a long table of cases (the error catalog): slow.
_SLOW_TESTS = frozenset({"test_mistake_sqlite", "test_mistake_postgresql"})
#: Single cases of the fast tier's slowest tests, where a faster case covers the same ground:
#: the graph memo of a multi-database folder (the graph and its memo are the same as the
#: single-database case's; only env.py differs, and test_multidb covers that), the async
#: multi-database template (test_aioflask is the async case, test_multidb the several
#: databases).
_SLOW_CASES = frozenset({
    "test_reading_commands_from_the_memo[flask-multidb]",
    "test_aioflask_multidb[flask]",
})


def _slow(item: pytest.Item) -> bool:
    module = item.module.__name__.rpartition(".")[2] if item.module else ""
    if module in _SLOW_MODULES or set(getattr(item, "fixturenames", ())) & _SERVER_FIXTURES:
        return True
    if getattr(item, "originalname", item.name) in _SLOW_TESTS or item.name in _SLOW_CASES:
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    # A server asked for by a parameter (request.getfixturevalue), and the second front-end:
    # both are generated from one table (tests/test_spec.py proves it), the full run tries both.
    return bool({"postgresql", "mariadb"} & set(map(str, params.values()))) or (
        params.get("front") == "script"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tests, so that ``-m "not slow"`` is the fast tier."""
    for item in items:
        if _slow(item):
            item.add_marker(pytest.mark.slow)


# Variables of the developer's shell that would change what the CLIs do.
_SCRUBBED = ("FLASK_APP", "FLASK_DB_DIRECTORY", "FLASK_MIGRATE_TRACEBACK", "EDITOR", "VISUAL")

#: FLASK_MIGRATE_TEST_SUBPROCESS=1: every run a fresh interpreter (subprocess.run), not a fork of
#: the warm one (tests/zygote.py) - to rule the runner out when a test behaves oddly.
SUBPROCESS = os.environ.get("FLASK_MIGRATE_TEST_SUBPROCESS", "").strip() not in ("", "0")
#: The warm interpreters of this session's runs (started with the environment pytest started
#: with, and the startup variables of the runs).
ZYGOTES = Zygotes({k: v for k, v in os.environ.items() if k not in _SCRUBBED})


def pytest_unconfigure() -> None:
    ZYGOTES.close()


@dataclass
class Result:
    """What one command-line run did."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.args)}\n-> exit {self.returncode}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


class Project:
    """A copy of one test application in its own folder, with its environment."""

    def __init__(
        self, path: Path, app: str, env: dict[str, str], front: str | None,
        subprocess: bool = False,
    ) -> None:
        self.path = path
        self.app = app
        self.env = env
        self.front = front
        #: Run every command in a fresh interpreter, never in a fork of the warm one.
        self.subprocess = subprocess

    def run(
        self,
        front: str,
        *args: str,
        env: dict[str, str] | None = None,
        manager_args: Iterable[str] = (),
        group: str = "db",
        timeout: float = 120,
        stdin: str | None = None,
    ) -> Result:
        """Run ``flask <group> ARGS`` or ``python manage.py [MANAGER_ARGS] <group> ARGS``.

        The run is a fork of a warm interpreter (:mod:`tests.zygote`), which behaves as a fresh
        ``python -m flask`` / ``python manage.py`` would; it is a fresh one
        (``subprocess.run``) when ``FLASK_MIGRATE_TEST_SUBPROCESS`` is set or the project asks
        for it (``Project(..., subprocess=True)``).
        """
        command = self.command(front, *args, manager_args=manager_args, group=group)
        if front == "flask":
            return self._execute(command, "module", "flask", command[3:], env, stdin, timeout)
        return self._execute(command, "script", "manage.py", command[2:], env, stdin, timeout)

    def python(self, script: str, *args: str, timeout: float = 120) -> Result:
        """Run ``python SCRIPT ARGS`` in the project's folder and environment, as :meth:`run`
        runs a command line (a script that uses the API as an application would)."""
        command = [sys.executable, script, *args]
        return self._execute(command, "script", script, list(args), None, None, timeout)

    def _execute(
        self, command: list[str], kind: str, target: str, rest: list[str],
        env: dict[str, str] | None, stdin: str | None, timeout: float,
    ) -> Result:
        environment = self.environment(env)
        zygote = None if SUBPROCESS or self.subprocess else ZYGOTES.get(environment)
        if zygote is None:
            completed = subprocess.run(
                command, cwd=self.path, env=environment, capture_output=True, text=True,
                timeout=timeout, input=stdin,
            )
            return Result(command, completed.returncode, completed.stdout, completed.stderr)
        returncode, stdout, stderr = zygote.run(
            kind, target, rest, cwd=self.path, env=environment, stdin=stdin, timeout=timeout,
            command=command,
        )
        return Result(command, returncode, stdout, stderr)

    def command(
        self, front: str, *args: str, manager_args: Iterable[str] = (), group: str = "db"
    ) -> list[str]:
        """The command line of ``flask <group> ARGS`` or ``python manage.py ... <group> ARGS``."""
        if front == "flask":
            return [sys.executable, "-m", "flask", group, *args]
        if front == "script":
            return [sys.executable, "manage.py", *manager_args, group, *args]
        raise ValueError(front)

    def environment(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment a run gets: this process's (less the developer's own settings),
        the project's, then ``env``."""
        full_env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        full_env.update(self.env)
        full_env.update(env or {})
        return full_env

    def db(self, *args: str, **kwargs: Any) -> Result:
        """Run a ``db`` command through this test's front-end."""
        assert self.front is not None, "this test has no `front` parameter"
        return self.run(self.front, *args, **kwargs)

    def ok(self, *args: str, **kwargs: Any) -> Result:
        """Run a ``db`` command through this test's front-end and require exit status 0."""
        result = self.db(*args, **kwargs)
        assert result.returncode == 0, str(result)
        return result

    @property
    def url(self) -> str:
        return self.env["DATABASE_URL"]

    @property
    def migrations(self) -> Path:
        return self.path / "migrations"

    def revision_files(self, directory: str = "migrations") -> list[Path]:
        return sorted((self.path / directory / "versions").glob("*.py"))


def tables(url: str) -> set[str]:
    """The names of the tables in the database at ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def columns(url: str, table: str) -> dict[str, Any]:
    """Column name -> SQLAlchemy type of ``table`` in the database at ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return {c["name"]: c["type"] for c in sa.inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


#: The version tables the tests' migrations folders use: Alembic's default, and the one of the
#: customised Flask-Migrate folders in tests/legacy_repos/generations.
VERSION_TABLES = ("alembic_version", "schema_history")


def versions(url: str) -> set[str]:
    """The revisions recorded in the version table (``alembic_version``, or ``schema_history``
    for the folders that use it); empty when there is none."""
    present = [table for table in VERSION_TABLES if table in tables(url)]
    found: set[str] = set()
    if not present:
        return found
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            for table in present:
                rows = connection.execute(sa.text(f"SELECT version_num FROM {table}"))
                found |= {row[0] for row in rows}
    finally:
        engine.dispose()
    return found


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


#: The manage.py of the applications that have none of their own (all but ``factory``).
MANAGE_PY = APPS / "manage.py"


def copy_app(name: str, destination: Path) -> None:
    """Copy ``tests/apps/<name>`` to ``destination``, with :data:`MANAGE_PY` unless the
    application has a manage.py of its own: either way ``python manage.py db`` runs there."""
    shutil.copytree(APPS / name, destination, ignore=shutil.ignore_patterns("__pycache__"))
    if not (destination / "manage.py").exists():
        shutil.copy(MANAGE_PY, destination / "manage.py")


@pytest.fixture(params=FRONTS)
def front(request: pytest.FixtureRequest) -> str:
    """The front-end under test: ``"flask"`` (``flask db``) or ``"script"`` (``manage.py db``)."""
    return request.param


@pytest.fixture
def make_project(tmp_path: Path, request: pytest.FixtureRequest):
    """``make_project(app="single", **env)``: a fresh copy of ``tests/apps/<app>``.

    The default database is a SQLite file in the project folder unless ``DATABASE_URL`` is
    given; multi-database apps get SQLite files for their binds too.
    """
    front_value = request.getfixturevalue("front") if "front" in request.fixturenames else None
    counter = iter(range(1000))

    def make(app: str = "single", **env: str) -> Project:
        path = tmp_path / f"{app}-{next(counter)}"
        copy_app(app, path)
        defaults = {
            "FLASK_APP": "app.py" if app != "factory" else "app:create_app",
            "DATABASE_URL": sqlite_url(path / "app.db"),
            "TEST_DATABASE_URL": sqlite_url(path / "test.db"),
            "USERS_URL": sqlite_url(path / "users.db"),
            "LOGS_URL": sqlite_url(path / "logs.db"),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if app == "asyncdb":
            defaults["DATABASE_URL"] = f"sqlite+aiosqlite:///{path / 'app.db'}"
        defaults.update(env)
        return Project(path, app, defaults, front_value)

    return make


@pytest.fixture
def project(make_project) -> Project:
    """A copy of the single-database app with a SQLite database."""
    return make_project("single")


def sqlite_tables(path: Path) -> set[str]:
    """Table names of a SQLite file, read with the standard library only."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        return {row[0] for row in rows}
