"""Helpers for the runtime-guarantee tests (SPEC section 5): hand-written repositories, the
database each test runs on, and reading a database back.

The guarantee tests use ``tests/apps/guarded``, an application whose schema comes only from
revision files: :func:`write_revision` writes them with exactly the operations a scenario needs
(a failure halfway, a sleep, an ``autocommit_block()``), so that nothing depends on what
autogenerate happens to produce.  The migrations folder itself is made once per session by the
real ``flask db init`` (the ``migrations_folder`` fixture), or is one of every generation of
the original Flask-Migrate (``any_migrations_folder``, over :data:`FOLDER_KINDS`), then copied
into each test's project by :func:`guarded_project`.  tests/conftest.py loads this module as a
plugin: its fixtures are there for every test module, unimported.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

import pytest
import sqlalchemy as sa

from tests.conftest import (
    VERSION_TABLES, Project, Result, copy_app, sqlite_url, tables, versions,
)
from tests.folders import GENERATIONS, SINGLE, install
from tests.workflow_helpers import error_lines

#: The backends of the guarantee tests; PostgreSQL and MariaDB come from tests/servers.py.
BACKENDS = ("sqlite", "postgresql", "mariadb")
#: The migrations folders the guarantees are tested on: the one ``flask db init`` makes
#: ("stock"), and one of every generation of the original Flask-Migrate, customised ones
#: included (tests/folders.py): the guarantees come from the command, not from env.py.
FOLDER_KINDS = ("stock", *SINGLE)
#: The kinds the tests on database servers run on, to keep the suite fast: the stock folder and
#: three generations that between them have every way an old env.py connects (an engine of its
#: own from the raw configured URL, with try/finally, in fm1; the application's engine and
#: conf_args in fm4) and configures Alembic (explicit keywords, include_object, another version
#: table in fm26-custom).  SQLite runs every kind.
SERVER_FOLDER_KINDS = ("stock", "fm1", "fm26-custom", "fm4")


def kinds_and(values: Sequence[Any], backend_of: Any = lambda value: value) -> list[Any]:
    """``(kind, *value)`` for every folder kind on SQLite, for the server sample otherwise.

    :param backend_of: the backend (``sqlite``, ``postgresql``, ``mariadb``) of a value.
    """
    combined = []
    for value in values:
        kinds = FOLDER_KINDS if backend_of(value) == "sqlite" else SERVER_FOLDER_KINDS
        parts = value if isinstance(value, tuple) else (value,)
        combined += [pytest.param(kind, *parts, id=f"{kind}-{_id(parts)}") for kind in kinds]
    return combined


def _id(parts: tuple[Any, ...]) -> str:
    return str(parts[-1])  # a value, or a case whose last item is its name


def kinds_with_fronts() -> list[Any]:
    """``(kind, front)`` for every folder kind, the two front-ends taking turns."""
    return [(kind, ("flask", "script")[index % 2]) for index, kind in enumerate(FOLDER_KINDS)]

_REVISION = '''"""{message}"""
import os
import time

from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = {branch_labels!r}
depends_on = {depends_on!r}


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def write_revision(
    project: Project,
    revision: str,
    down_revision: str | None,
    upgrade: str | Sequence[str] = "pass",
    downgrade: str | Sequence[str] = "pass",
    message: str | None = None,
    branch_labels: str | Sequence[str] | None = None,
    depends_on: str | Sequence[str] | None = None,
) -> Path:
    """Write ``migrations/versions/<revision>_.py`` with the given function bodies.

    A body is Python source, or a list of pieces of it, each at any indentation of its own;
    ``os``, ``time``, ``op`` and ``sa`` are imported in the file.
    """
    path = project.migrations / "versions" / f"{revision}_.py"
    path.write_text(
        _REVISION.format(
            message=message or f"revision {revision}",
            revision=revision,
            down_revision=down_revision,
            branch_labels=branch_labels,
            depends_on=depends_on,
            upgrade=_body(upgrade),
            downgrade=_body(downgrade),
        ),
        encoding="utf-8",
    )
    return path


def _body(source: str | Sequence[str]) -> str:
    pieces = [source] if isinstance(source, str) else list(source)
    code = "\n".join(textwrap.dedent(piece).strip("\n") for piece in pieces)
    return textwrap.indent(code, "    ")


def create_table(name: str) -> str:
    """An ``upgrade()`` line that creates table ``name`` (an ``id`` key and an ``n`` column)."""
    return (
        f'op.create_table("{name}", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("n", sa.Integer))'
    )


def fail_when(variable: str, value: str) -> str:
    """Lines that run invalid SQL when ``$variable`` is ``value``: the revision fails there."""
    return f'if os.environ.get("{variable}") == "{value}":\n    op.execute("THIS IS NOT SQL")'


def pause_when(variable: str, then: str = "time.sleep(120)") -> str:
    """Lines that, when ``$variable`` is set, create the file ``$MARKER`` and run ``then`` (a
    line of Python): a test waits for the file (:meth:`tests.processes.Run.wait_for`), then
    stops the run in the middle of the revision."""
    return (f'if os.environ.get("{variable}"):\n'
            f'    open(os.environ["MARKER"], "w").close()\n    {then}')


@pytest.fixture(scope="session")
def stock_migrations_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrations folder made by ``flask db init`` for the guarded app, once per session."""
    path = tmp_path_factory.mktemp("guarded-init")
    copy_app("guarded", path / "app")
    project = Project(
        path / "app", "guarded",
        {"FLASK_APP": "app.py", "DATABASE_URL": sqlite_url(path / "unused.db"),
         "PYTHONDONTWRITEBYTECODE": "1"},
        None,
    )
    result = project.run("flask", "init")
    assert result.returncode == 0, str(result)
    return project.migrations


@pytest.fixture
def migrations_folder(stock_migrations_folder: Path) -> Path:
    """The stock migrations folder (``flask db init``)."""
    return stock_migrations_folder


@pytest.fixture(params=FOLDER_KINDS)
def folder_kind(request: pytest.FixtureRequest) -> str:
    """A kind of migrations folder (see :data:`FOLDER_KINDS`)."""
    return request.param


@pytest.fixture
def any_migrations_folder(
    folder_kind: str, stock_migrations_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A migrations folder of each kind in turn: the stock one, then each generation's."""
    if folder_kind == "stock":
        return stock_migrations_folder
    path = tmp_path_factory.mktemp(folder_kind) / "migrations"
    install(folder_kind, path)
    return path


def version_table(kind: str) -> str:
    """The version table the migrations folder of ``kind`` records revisions in."""
    return "alembic_version" if kind == "stock" else GENERATIONS[kind].version_table


def guarded_project(make_project, migrations_folder: Path, url: str | None, **env: str) -> Project:
    """A copy of ``tests/apps/guarded`` with an empty migrations folder, on the database ``url``.

    ``url`` None keeps the project's own SQLite file.
    """
    if url is not None:
        env["DATABASE_URL"] = url
    project = make_project("guarded", **env)
    shutil.copytree(migrations_folder, project.migrations)
    return project


def database_url(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh database of ``backend`` (None for SQLite: the project's own file)."""
    if backend == "sqlite":
        return None
    return str(request.getfixturevalue(f"{backend}_url"))


#: The tables that record a revision in progress (:mod:`flask_migrate.runtime.marks`).
MARK_TABLES = tuple(f"{table}_in_progress" for table in VERSION_TABLES)


def state(url: str) -> tuple[set[str], set[str]]:
    """``(tables other than the version table, revisions in the version table)`` at ``url``.

    The record of a revision in progress is not counted: :func:`interrupted` reads it.
    """
    return tables(url) - set(VERSION_TABLES) - set(MARK_TABLES), versions(url)


def interrupted(url: str) -> list[tuple[str, str]]:
    """``(revision, direction)`` of each record of a revision that did not finish, at ``url``."""
    found = []
    for table in set(MARK_TABLES) & tables(url):
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                found += [tuple(row) for row in connection.execute(
                    sa.text(f"SELECT revision, direction FROM {table}"))]
        finally:
            engine.dispose()
    return found


def scalars(url: str, sql: str) -> list:
    """The first column of every row ``sql`` returns at ``url``."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(sql)).scalars())
    finally:
        engine.dispose()


def execute(url: str, *statements: str) -> None:
    """Run ``statements`` at ``url`` in one transaction, as another client would."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def error_line(result: Result) -> str:
    """The one ``Error: ...`` line of a failed run."""
    errors = error_lines(result)
    assert len(errors) == 1, str(result)
    return errors[0]


def progress_lines(result: Result, *starts: str) -> list[str]:
    """The messages (after the ``INFO  [flask_migrate]`` prefix) that begin with ``starts``."""
    found = []
    for line in result.stderr.splitlines():
        _, marker, message = line.partition("[flask_migrate] ")
        if marker and message.startswith(starts):
            found.append(message)
    return found


def run_python(project: Project, script: Path) -> Result:
    """Run ``script`` with this interpreter in the project's folder and environment."""
    command = [sys.executable, str(script)]
    completed = subprocess.run(
        command, cwd=project.path, env={**os.environ, **project.env}, capture_output=True,
        text=True, timeout=120,
    )
    result = Result(command, completed.returncode, completed.stdout, completed.stderr)
    assert result.returncode == 0, str(result)
    return result
