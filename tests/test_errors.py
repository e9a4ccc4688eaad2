"""Every mistake gets a clear answer: a catalog of user errors, run through both front-ends.

Each row of :data:`CATALOG` is one mistake a user can make (a command line, a starting project,
maybe a change made to it first).  It runs through ``flask db`` and ``python manage.py db`` (the
``front`` fixture) on SQLite, and the rows that involve a database server run once more on a
fresh PostgreSQL database.  Every run must:

- exit 1 for a failure, or 2 for a usage error;
- print exactly one ``Error: ...`` line on stderr, holding the row's fragments: the problem and
  what to do about it;
- print no Python traceback (``Traceback (most recent call last)``);
- print no password (the database URLs carry the recognisable ``s3cr3t-pw``);
- change nothing: every file and folder under the project (path -> bytes), and the database
  (tables, columns, ``alembic_version`` rows, or its absence) are the same before and after.

Starting projects are built once per module (:func:`states`) and copied for each run.  After the
catalog: a revision script that fails in ``upgrade()`` (where the database was left), the
separation of data (stdout) from messages (stderr), masked passwords, and
``FLASK_MIGRATE_TRACEBACK``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import sqlite3
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from flask_migrate.dispatch import TRACEBACK_HINT
from tests.conftest import FRONTS, STACK, Project, Result, copy_app, sqlite_url
from tests import guarantee_helpers
from tests.servers import PostgresServer
from tests.workflow_helpers import GAVE_UP_AFTER_1_S, error_lines

#: The password of every database URL these tests hand to a command; it must never be shown.
PASSWORD = "s3cr3t-pw"
#: The PostgreSQL role that owns that password (created per module, a superuser of the test
#: server only, so that it needs no grants in each fresh database).
PG_ROLE = "fm_errors"
FULL_TRACEBACK = "Traceback (most recent call last)"

# The revisions of the "applied" project: ids sharing a prefix, so that "abc" is ambiguous.
FIRST, SECOND = "abc111", "abc222"
UNKNOWN = "fedcba987654"
STRAY = "dead00beef00"


# ---------------------------------------------------------------------------------------------
# Starting projects, and how a run finds its database
# ---------------------------------------------------------------------------------------------


def _environment(path: Path, app: str = "single") -> dict[str, str]:
    return {
        "FLASK_APP": "app.py",
        "DATABASE_URL": sqlite_url(path / "app.db"),
        "USERS_URL": sqlite_url(path / "users.db"),
        "LOGS_URL": sqlite_url(path / "logs.db"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **({"NO_DEFAULT": "1"} if app == "multidb" else {}),
    }


def _build(path: Path, app: str, *commands: tuple[str, ...]) -> Path:
    copy_app(app, path)
    project = Project(path, app, _environment(path, app), None)
    for args in commands:
        result = project.run("flask", *args)
        assert result.returncode == 0, str(result)
    return path


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Starting projects, built once per module; each run works on a copy.

    - ``bare``: the single-database app, with no migrations folder and no database file;
    - ``fresh``: the same after ``init`` (no revision, no database file yet);
    - ``applied``: two revisions, ``abc111`` (creates ``user``) and ``abc222`` (empty), and the
      SQLite database upgraded to ``abc222``;
    - ``binds-only``: the multi-database app without a default database, with a
      single-database migrations folder.
    """
    root = tmp_path_factory.mktemp("states")
    return in_parallel(_build, {
        "bare": (root / "bare", "single"),
        "fresh": (root / "fresh", "single", ("init",)),
        "applied": (
            root / "applied", "single", ("init",),
            ("revision", "--autogenerate", "-m", "create users", "--rev-id", FIRST),
            ("revision", "-m", "second", "--rev-id", SECOND),
            ("upgrade",),
        ),
        "binds-only": (root / "binds-only", "multidb", ("init",)),
    })


@dataclass
class Backend:
    """The database a run uses, and URLs for the connection mistakes."""

    name: str  # "sqlite" or "postgresql"
    url: str | None  # the database; None means the project's own SQLite file
    unreachable_url: str
    wrong_password_url: str | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _sqlite_backend(tmp_path: Path) -> Backend:
    return Backend("sqlite", None, sqlite_url(tmp_path / "no-such-folder" / "app.db"))


@pytest.fixture(scope="module")
def pg_role(postgresql_server: PostgresServer) -> Iterator[str]:
    engine = sa.create_engine(
        postgresql_server.url("postgres"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as connection:
        connection.execute(sa.text(f"DROP ROLE IF EXISTS {PG_ROLE}"))
        connection.execute(
            sa.text(f"CREATE ROLE {PG_ROLE} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
        )
    yield PG_ROLE
    with engine.connect() as connection:
        connection.execute(sa.text(f"DROP ROLE IF EXISTS {PG_ROLE}"))
    engine.dispose()


def _pg_backend(postgresql_url: str, role: str) -> Backend:
    url = sa.engine.make_url(postgresql_url)
    mine = url.set(username=role, password=PASSWORD)
    return Backend(
        "postgresql",
        mine.render_as_string(hide_password=False),
        mine.set(port=_free_port()).render_as_string(hide_password=False),
        url.set(password=PASSWORD).render_as_string(hide_password=False),
    )


def copy_state(state: Path, destination: Path, front: str | None, backend: Backend) -> Project:
    """A copy of a starting project, its database being ``backend``'s (brought to the head)."""
    app = "multidb" if state.name == "binds-only" else "single"
    shutil.copytree(state, destination)
    project = Project(destination, app, _environment(destination, app), front)
    if backend.url is not None:
        (destination / "app.db").unlink(missing_ok=True)
        project.env["DATABASE_URL"] = backend.url
        if state.name == "applied":
            result = project.run("flask", "upgrade")
            assert result.returncode == 0, str(result)
    return project


# ---------------------------------------------------------------------------------------------
# Snapshots: "nothing changed"
# ---------------------------------------------------------------------------------------------


def files_state(path: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``path``."""
    found: dict[str, bytes | None] = {}
    for item in sorted(path.rglob("*")):
        key = str(item.relative_to(path))
        found[key] = item.read_bytes() if item.is_file() else None
    return found


def database_state(url: str) -> dict[str, Any] | None:
    """Tables with their columns, and the ``alembic_version`` rows; None if there is no file.

    A SQLite file is opened read-only, so that looking never creates it.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            return None
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            try:
                names = [row[0] for row in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            except sqlite3.DatabaseError:  # not a database: its bytes are its state
                return {"not a database": path.read_bytes()}
            schema = {
                name: [(row[1], row[2]) for row in conn.execute(f'PRAGMA table_info("{name}")')]
                for name in names
            }
            rows = (
                _version_rows(conn.execute("SELECT * FROM alembic_version").fetchall(),
                              [column for column, _ in schema["alembic_version"]])
                if "alembic_version" in schema else None
            )
        return {"tables": schema, "alembic_version": rows}
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        inspector = sa.inspect(engine)
        schema = {
            name: [(column["name"], str(column["type"])) for column in inspector.get_columns(name)]
            for name in sorted(inspector.get_table_names())
        }
        rows = None
        if "alembic_version" in schema:
            with engine.connect() as connection:
                rows = _version_rows(
                    connection.execute(sa.text("SELECT * FROM alembic_version")).fetchall(),
                    [column for column, _ in schema["alembic_version"]],
                )
        return {"tables": schema, "alembic_version": rows}
    finally:
        engine.dispose()


def _version_rows(rows: list[Any], columns: list[str]) -> list[Any]:
    """The revisions in ``alembic_version``; every row whole when it is not a version table
    (a table of the application's with that name)."""
    if columns == ["version_num"]:
        return sorted((row[0] for row in rows), key=repr)
    return sorted((tuple(row) for row in rows), key=repr)


def snapshot(project: Project) -> dict[str, Any]:
    return {"files": files_state(project.path), "database": database_state(project.url)}


def assert_unchanged(before: dict[str, Any], after: dict[str, Any], result: Result) -> None:
    added = sorted(set(after["files"]) - set(before["files"]))
    removed = sorted(set(before["files"]) - set(after["files"]))
    changed = sorted(
        key for key in set(before["files"]) & set(after["files"])
        if before["files"][key] != after["files"][key]
    )
    assert not (added or removed or changed), (
        f"files changed: added {added}, removed {removed}, modified {changed}\n{result}"
    )
    assert before["database"] == after["database"], (
        f"the database changed:\n  before {before['database']}\n  after  {after['database']}\n"
        f"{result}"
    )


# ---------------------------------------------------------------------------------------------
# Changes a row makes to its project before the run
# ---------------------------------------------------------------------------------------------


def write_revision(
    project: Project, rev: str, down: str | None, *, message: str = "written by hand",
    upgrade: str = "pass", downgrade: str = "pass", top: str = "",
) -> Path:
    """A revision file in ``migrations/versions``, as a user would write it."""
    path = project.migrations / "versions" / f"{rev}_by_hand.py"
    path.write_text(
        f'"""{message}\n\nRevision ID: {rev}\nRevises: {down or ""}\n"""\n'
        f"{top}"
        "from alembic import op\nimport sqlalchemy as sa\n\n"
        f"revision = {rev!r}\ndown_revision = {down!r}\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{textwrap.indent(textwrap.dedent(upgrade).strip(), '    ')}\n\n\n"
        f"def downgrade():\n{textwrap.indent(textwrap.dedent(downgrade).strip(), '    ')}\n",
        encoding="utf-8",
    )
    return path


def set_versions(project: Project, *revisions: str) -> None:
    """Write ``alembic_version`` directly, as a stray deployment or a hand edit would."""
    engine = sa.create_engine(project.url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM alembic_version"))
            for revision in revisions:
                connection.execute(
                    sa.text("INSERT INTO alembic_version (version_num) VALUES (:v)"),
                    {"v": revision},
                )
    finally:
        engine.dispose()


def add_second_head(project: Project) -> None:
    write_revision(project, "fork01", FIRST, message="a branch")


def at_two_heads(project: Project) -> None:
    """Two heads, both applied: the database is up to date, but on two branches."""
    add_second_head(project)
    set_versions(project, SECOND, "fork01")


def add_nonempty_folder(project: Project) -> None:
    (project.path / "notes").mkdir()
    (project.path / "notes" / "todo.txt").write_text("keep me\n")


def add_template_without_env(project: Project) -> None:
    (project.path / "mytemplate").mkdir()
    (project.path / "mytemplate" / "README").write_text("Not a template: no env.py.\n")


def add_migrations_folder_as_template(project: Project) -> None:
    """A folder that has an env.py but is a migrations folder, not a template."""
    (project.path / "othermigrations").mkdir()
    (project.path / "othermigrations" / "env.py").write_text("x = 1\n")
    (project.path / "othermigrations" / "alembic.ini").write_text("[alembic]\n")


def add_broken_template(project: Project) -> None:
    """A template folder whose alembic.ini.mako is not valid Mako."""
    folder = project.path / "brokentemplate"
    folder.mkdir()
    (folder / "env.py").write_text("x = 1\n")
    (folder / "script.py.mako").write_text("${message}\n")
    (folder / "alembic.ini.mako").write_text("[alembic]\n${\n")


def remove_extension(project: Project) -> None:
    """The app no longer calls ``Migrate(app, db, ...)`` (manage.py still adds ``db``)."""
    app_py = project.path / "app.py"
    text = app_py.read_text()
    assert "\nmigrate = Migrate(" in text
    no_op = "\nmigrate = (lambda *args, **kwargs: None)("
    app_py.write_text(text.replace("\nmigrate = Migrate(", no_op, 1))


def add_syntax_error(project: Project) -> None:
    path = write_revision(project, "bad001", SECOND, message="broken syntax")
    path.write_text(path.read_text().replace("def upgrade():", "def upgrade(:"))


def add_import_error(project: Project) -> None:
    write_revision(project, "bad002", SECOND, message="missing module",
                   top="import no_such_module_xyz\n")


def add_bad_down_revision(project: Project) -> None:
    write_revision(project, "bad003", "0000feed0000", message="orphan")


def make_versions_read_only(project: Project) -> None:
    versions = project.migrations / "versions"
    versions.chmod(0o555)
    probe = versions / "probe"
    try:
        probe.write_text("")
    except PermissionError:
        return
    probe.unlink()
    versions.chmod(0o755)
    pytest.skip("running with privileges that ignore file permissions (root?), so a "
                "read-only folder cannot be simulated with chmod")


def remove_env_py(project: Project) -> None:
    (project.migrations / "env.py").unlink()


def database_not_a_database(project: Project) -> None:
    (project.path / "app.db").write_bytes(b"these bytes are not a SQLite database\n" * 64)


def behind(project: Project) -> None:
    set_versions(project, FIRST)


def stray_version(project: Project) -> None:
    set_versions(project, STRAY)


def execute(project: Project, *statements: str) -> None:
    """Run SQL on the project's database, as a hand edit or another tool would."""
    guarantee_helpers.execute(project.url, *statements)


def empty_env_py(project: Project) -> None:
    (project.migrations / "env.py").write_bytes(b"")


def env_py_that_runs_nothing(project: Project) -> None:
    """An env.py that lost its last lines: it runs, but never runs the migrations."""
    (project.migrations / "env.py").write_text('print("configuring")\n')


def env_py_syntax_error(project: Project) -> None:
    env = project.migrations / "env.py"
    env.write_text(env.read_text() + "\ndef broken(:\n")


def alembic_ini(text: str | bytes) -> Callable[[Project], None]:
    def write(project: Project) -> None:
        ini = project.migrations / "alembic.ini"
        if isinstance(text, bytes):
            ini.write_bytes(text)
        else:
            ini.write_text(text)
    return write


def script_template(text: str | None, *, append: bool = False) -> Callable[[Project], None]:
    """script.py.mako removed (None), replaced by ``text``, or with ``text`` added."""
    def change(project: Project) -> None:
        template = project.migrations / "script.py.mako"
        if text is None:
            template.unlink()
        else:
            template.write_text((template.read_text() if append else "") + text)
    return change


def second_head_without_script_template(project: Project) -> None:
    add_second_head(project)
    script_template(None)(project)


def versions_a_file(project: Project) -> None:
    shutil.rmtree(project.migrations / "versions")
    (project.migrations / "versions").write_text("not a folder\n")


def empty_revision_file(project: Project) -> None:
    (project.migrations / "versions" / "abc333_truncated.py").write_bytes(b"")


def add_cycle(project: Project) -> None:
    """Two revisions, each the down_revision of the other."""
    write_revision(project, "cyc001", "cyc002", message="one of a cycle")
    write_revision(project, "cyc002", "cyc001", message="other of a cycle")


def add_self_loop(project: Project) -> None:
    write_revision(project, "cyc003", "cyc003", message="its own parent")


def add_duplicate_id(project: Project) -> None:
    """A second file with SECOND's revision id (a copy left behind by a rename)."""
    path = write_revision(project, SECOND, FIRST, message="a copy")
    path.rename(path.with_name(f"{SECOND}_copy.py"))


def versions_on_one_line(project: Project) -> None:
    """Two rows where the history is one line: FIRST comes before SECOND."""
    set_versions(project, FIRST, SECOND)


def version_empty_string(project: Project) -> None:
    set_versions(project, "")


def version_null(project: Project) -> None:
    execute(project, "DROP TABLE alembic_version",
            "CREATE TABLE alembic_version (version_num VARCHAR(32))",
            "INSERT INTO alembic_version (version_num) VALUES (NULL)")


def version_not_text(project: Project) -> None:
    execute(project, "DROP TABLE alembic_version",
            "CREATE TABLE alembic_version (version_num INTEGER)",
            "INSERT INTO alembic_version (version_num) VALUES (5)")


def version_table_foreign(project: Project) -> None:
    """The application has a table of its own named alembic_version."""
    execute(project, "DROP TABLE alembic_version",
            "CREATE TABLE alembic_version (id INTEGER PRIMARY KEY, name VARCHAR(40))",
            "INSERT INTO alembic_version (id, name) VALUES (1, 'not ours')")


def add_pending_revision(project: Project) -> None:
    write_revision(project, "next01", SECOND, message="pending",
                   upgrade='op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))',
                   downgrade='op.drop_table("t")')


# ---------------------------------------------------------------------------------------------
# Another process holding the database while the command runs
# ---------------------------------------------------------------------------------------------

LOCK_TIMEOUT = {"FLASK_MIGRATE_LOCK_TIMEOUT": "1"}


@contextlib.contextmanager
def application_writing(project: Project) -> Iterator[None]:
    """The running application, in a long write transaction (SQLite's write lock)."""
    connection = sqlite3.connect(project.path / "app.db", isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.close()


@contextlib.contextmanager
def application_locking_out_readers(project: Project) -> Iterator[None]:
    """The running application, holding SQLite's exclusive lock: not even reads get in."""
    connection = sqlite3.connect(project.path / "app.db", isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        yield
    finally:
        connection.close()


@contextlib.contextmanager
def migration_running_elsewhere(project: Project) -> Iterator[None]:
    """Another process's migration of the same PostgreSQL database, holding its lock."""
    from flask_migrate.runtime import locks

    name = locks.lock_name("alembic_version", None, sa.engine.make_url(project.url).database)
    engine = sa.create_engine(project.url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            took = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                      {"key": locks._advisory_key(name)}).scalar()
            assert took, "the lock was already taken"
            yield
    finally:
        engine.dispose()  # closing the session releases the lock


# ---------------------------------------------------------------------------------------------
# The catalog
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mistake:
    """One row: a command line, where it starts from, and the answer it must get."""

    id: str
    args: tuple[str, ...]
    #: Fragments of the ``Error:`` line (case-insensitive; a pattern is searched for): the
    #: problem and what to do.
    says: tuple[str | re.Pattern[str], ...]
    status: int = 1
    state: str = "applied"
    prepare: Callable[[Project], None] | None = None
    #: Extra environment; a callable receives the :class:`Backend` of the run.
    env: dict[str, str] | Callable[[Backend], dict[str, str]] = field(default_factory=dict)
    backends: tuple[str, ...] = ("sqlite",)
    #: front -> (status, says) where one front-end must answer differently.
    per_front: dict[str, tuple[int, tuple[str | re.Pattern[str], ...]]] = field(
        default_factory=dict)
    #: Another process holding the database for the length of the run (not of the snapshots).
    holding: Callable[[Project], contextlib.AbstractContextManager[None]] | None = None

    def expected(self, front: str) -> tuple[int, tuple[str | re.Pattern[str], ...]]:
        return self.per_front.get(front, (self.status, self.says))

    def environment(self, backend: Backend) -> dict[str, str]:
        return self.env(backend) if callable(self.env) else dict(self.env)


BOTH = ("sqlite", "postgresql")
NO_FOLDER = ("no migrations folder", "db init")

CATALOG = [
    # No migrations folder: every command that needs one says to run init.
    *(
        Mistake(f"no-folder-{args[0]}", args, NO_FOLDER, state="bare")
        for args in (("upgrade",), ("current",), ("migrate", "-m", "x"), ("stamp", "head"),
                     ("edit",))
    ),
    Mistake("no-folder-named", ("heads", "-d", "elsewhere"), ("elsewhere", "db init")),
    # init where a folder exists.
    Mistake("init-existing", ("init",), ("migrations", "already exists", "-d"), state="fresh"),
    Mistake("init-non-empty", ("init", "-d", "notes"), ("notes", "not empty", "-d"),
            state="bare", prepare=add_nonempty_folder),
    # -d naming a file.
    Mistake("directory-is-file-current", ("current", "-d", "app.py"), ("app.py", "not a folder")),
    Mistake("directory-is-file-init", ("init", "-d", "app.py"), ("app.py", "not a folder"),
            state="bare"),
    # Revisions the folder does not have, or cannot tell apart.
    Mistake("unknown-revision-show", ("show", UNKNOWN), (UNKNOWN, "db history")),
    Mistake("unknown-revision-upgrade", ("upgrade", UNKNOWN), (UNKNOWN, "db history"),
            backends=BOTH),
    Mistake("unknown-revision-downgrade", ("downgrade", UNKNOWN), (UNKNOWN, "db history"),
            backends=BOTH),
    Mistake("ambiguous-prefix-show", ("show", "abc"), ("abc", FIRST, SECOND, "more of")),
    Mistake("ambiguous-prefix-upgrade", ("upgrade", "abc"), ("abc", FIRST, SECOND, "more of"),
            backends=BOTH),
    # history ranges.
    Mistake("bad-range", ("history", "-r", "foo"), ("foo", "[start]:[end]"), status=2),
    Mistake("range-unknown-revision", ("history", "-r", f"{UNKNOWN}:"), (UNKNOWN, "db history")),
    # Relative steps past either end of the history.
    Mistake("downgrade-below-base", ("downgrade", "-5"), ("-5", "base"), backends=BOTH),
    Mistake("upgrade-past-head", ("upgrade", "+3"), ("+3", "head")),
    # merge needs two revisions.
    Mistake("merge-none", ("merge",), ("merge", "heads"), status=2),
    Mistake("merge-one", ("merge", SECOND), ("merge", "two or more"), status=2),
    Mistake("merge-single-head", ("merge", "heads"), ("one head", SECOND, "nothing to merge")),
    Mistake("merge-unknown", ("merge", SECOND, UNKNOWN), (UNKNOWN, "db history")),
    # --rev-id, --head, --version-path.
    Mistake("rev-id-exists", ("revision", "-m", "again", "--rev-id", FIRST),
            (FIRST, "already exists", "--rev-id"), status=2),
    Mistake("rev-id-exists-merge", ("merge", "heads", "--rev-id", SECOND),
            (SECOND, "already exists", "--rev-id"), status=2, prepare=add_second_head),
    Mistake("head-not-a-head", ("revision", "-m", "x", "--head", FIRST), (FIRST, "--splice")),
    Mistake("version-path-unknown", ("revision", "-m", "x", "--version-path", "nowhere"),
            ("nowhere", "version_locations")),
    # Several heads.
    Mistake("several-heads-upgrade", ("upgrade",), ("head", "db merge heads"),
            prepare=add_second_head, backends=BOTH),
    Mistake("several-heads-migrate", ("migrate", "-m", "x"), ("head", "db merge heads"),
            prepare=at_two_heads, env={"MODEL_VERSION": "2"}, backends=BOTH),
    Mistake("stamp-unknown", ("stamp", UNKNOWN), (UNKNOWN, "db history"), backends=BOTH),
    # Templates.
    Mistake("template-unknown", ("init", "-t", "no-such-template"),
            ("no-such-template", "list-templates"), status=2, state="bare"),
    Mistake("template-path-without-env", ("init", "-t", "mytemplate"),
            ("mytemplate", "env.py"), status=2, state="bare", prepare=add_template_without_env),
    Mistake("template-path-not-a-template", ("init", "-d", "new", "-t", "othermigrations"),
            ("othermigrations", "alembic.ini.mako", "not a template"), status=2, state="bare",
            prepare=add_migrations_folder_as_template),
    # init fails after writing some files: the half-made folder is removed again.
    Mistake("template-that-cannot-render", ("init", "-d", "new", "-t", "brokentemplate"),
            ("alembic.ini.mako", "cannot be rendered", "fix that file"), state="bare",
            prepare=add_broken_template),
    # The application.
    Mistake("extension-not-initialised", ("current",), ("no flask-migrate extension",
            "Migrate(app, db)"), state="fresh", prepare=remove_extension,
            per_front={"flask": (2, ("no such command 'db'",))}),
    Mistake("unknown-bind", ("upgrade", "--bind", "archive"), ("archive", "default")),
    Mistake("binds-only-app-single-folder", ("current",),
            ("no default database", "SQLALCHEMY_DATABASE_URI", "--multidb"), state="binds-only"),
    # The database.
    Mistake("database-unreachable", ("current",), ("cannot connect", "check that"),
            env=lambda backend: {"DATABASE_URL": backend.unreachable_url}, backends=BOTH),
    Mistake("wrong-password", ("upgrade",), ("cannot connect", "user name and password"),
            env=lambda backend: {"DATABASE_URL": backend.wrong_password_url or ""},
            backends=("postgresql",)),
    Mistake("stray-version-current", ("current",), (STRAY, "database", "stamp --purge"),
            prepare=stray_version, backends=BOTH),
    Mistake("stray-version-upgrade", ("upgrade",), (STRAY, "database", "stamp --purge"),
            prepare=stray_version, backends=BOTH),
    Mistake("stray-version-stamp", ("stamp", FIRST), (STRAY, "database", "--purge"),
            prepare=stray_version),
    Mistake("check-behind", ("check",), ("not up to date", "db upgrade"), prepare=behind,
            backends=BOTH),
    Mistake("migrate-behind", ("migrate", "-m", "x"), ("not up to date", "db upgrade"),
            prepare=behind, backends=BOTH),
    Mistake("check-model-changes", ("check",), ("email", "db migrate"),
            env={"MODEL_VERSION": "2"}, backends=BOTH),
    # Revision files that cannot be loaded.
    Mistake("revision-syntax-error", ("heads",), ("bad001", "SyntaxError"),
            prepare=add_syntax_error),
    Mistake("revision-import-error", ("history",), ("bad002", "no_such_module_xyz"),
            prepare=add_import_error),
    Mistake("revision-unknown-down-revision", ("heads",), ("0000feed0000", "bad003"),
            prepare=add_bad_down_revision),
    # Files of the folder, and the database file, that are not what they should be.
    Mistake("env-py-missing-upgrade", ("upgrade",), ("no env.py", "doctor --fix"),
            prepare=remove_env_py),
    Mistake("env-py-missing-current", ("current",), ("no env.py", "doctor --fix"),
            prepare=remove_env_py),
    Mistake("database-file-not-a-database-upgrade", ("upgrade",),
            ("file is not a database", "database URL"), prepare=database_not_a_database),
    Mistake("database-file-not-a-database-current", ("current",),
            ("file is not a database",), prepare=database_not_a_database),
    # env.py empty, or cut short: it runs no migrations, which must not pass for success.
    *(
        Mistake(f"env-py-empty-{args[0]}", args, ("env.py", "is empty", "doctor --fix"),
                prepare=empty_env_py, env={"MODEL_VERSION": "2"})
        for args in (("upgrade",), ("current",), ("migrate", "-m", "x"), ("stamp", FIRST),
                     ("status",))
    ),
    Mistake("env-py-empty-upgrade-sql", ("upgrade", "--sql"), ("env.py", "is empty"),
            prepare=empty_env_py),
    Mistake("env-py-runs-nothing", ("upgrade",), ("env.py", "run_migrations()", "doctor --fix"),
            prepare=env_py_that_runs_nothing),
    # env.py is the user's code: its own frames may be shown (not a full traceback).
    Mistake("env-py-syntax-error", ("current",), ("env.py", "SyntaxError", "fix the script"),
            prepare=env_py_syntax_error),
    # alembic.ini that cannot be read (a missing or empty one just works: see below).
    Mistake("alembic-ini-not-ini", ("current",), ("alembic.ini", "line 1", "fix or restore"),
            prepare=alembic_ini("this is not an ini file\n[[[\n")),
    Mistake("alembic-ini-not-text", ("upgrade",), ("alembic.ini", "not UTF-8", "fix or restore"),
            prepare=alembic_ini(bytes(range(128, 256)) * 4)),
    Mistake("alembic-ini-bad-substitution", ("revision", "-m", "x"),
            ("alembic.ini", "file_template", "%%"),
            prepare=alembic_ini("[alembic]\nfile_template = %(rev)s_100%\n")),
    # script.py.mako missing, empty or broken: no revision file is left behind.
    Mistake("script-mako-missing", ("revision", "-m", "x"),
            ("no script.py.mako", "doctor --fix"), prepare=script_template(None)),
    Mistake("script-mako-missing-merge", ("merge", SECOND, "fork01"),
            ("no script.py.mako", "doctor --fix"),
            prepare=second_head_without_script_template),
    Mistake("script-mako-empty", ("migrate", "-m", "x"),
            ("empty script.py.mako", "doctor --fix"), prepare=script_template(""),
            env={"MODEL_VERSION": "2"}),
    Mistake("script-mako-syntax-error", ("revision", "-m", "x"),
            ("script.py.mako", "cannot be rendered", "fix that file"),
            prepare=script_template("${\n", append=True)),
    Mistake("script-mako-render-error", ("revision", "-m", "x"),
            ("cannot be rendered", "script.py.mako, line", "fix that file"),
            prepare=script_template("${no_such_name.attribute}\n", append=True)),
    Mistake("script-mako-writes-bad-python", ("revision", "-m", "x"),
            ("new revision file", "SyntaxError", "removed", "script.py.mako"),
            prepare=script_template("def broken(:\n", append=True)),
    # versions/ that is a file (a missing one just works: see below).
    Mistake("versions-is-a-file", ("revision", "-m", "x"),
            (os.path.join("migrations", "versions"), "is a file", "folder"),
            prepare=versions_a_file),
    # Histories that are no history.
    Mistake("revision-file-empty", ("heads",),
            ("abc333_truncated.py", "not a revision file", "restore it"),
            prepare=empty_revision_file),
    Mistake("history-cycle-heads", ("heads",),
            ("cycle", "cyc001", "cyc002", "cyc001_by_hand.py", "down_revision"),
            prepare=add_cycle),
    Mistake("history-cycle-upgrade", ("upgrade",), ("cycle", "cyc001", "cyc002"),
            prepare=add_cycle),
    Mistake("history-self-loop", ("history",), ("cyc003", "names itself", "down_revision"),
            prepare=add_self_loop),
    Mistake("history-duplicate-id-heads", ("heads",),
            (SECOND, "more than one file", f"{SECOND}_copy.py", f"{SECOND}_second.py"),
            prepare=add_duplicate_id),
    Mistake("history-duplicate-id-upgrade", ("upgrade",),
            (SECOND, "more than one file", "new revision id"), prepare=add_duplicate_id),
    # Version tables with rows no history can have, or that are not a version table at all.
    *(
        Mistake(f"version-rows-one-line-{args[0]}", args,
                (FIRST, SECOND, "one line of history", f"stamp --purge {SECOND}"),
                prepare=versions_on_one_line, backends=BOTH)
        for args in (("current",), ("upgrade",), ("downgrade",), ("status",), ("stamp", "head"))
    ),
    Mistake("version-row-empty-string", ("upgrade",),
            ("an empty string", "no revision id", "stamp --purge"),
            prepare=version_empty_string, backends=BOTH),
    Mistake("version-row-null", ("current",), ("NULL", "no revision id", "stamp --purge"),
            prepare=version_null, backends=BOTH),
    Mistake("version-row-not-text", ("upgrade",), ("5", "not text", "version_table="),
            prepare=version_not_text, backends=BOTH),
    Mistake("version-table-foreign-current", ("current",),
            ("alembic_version", "no version_num column", "version_table="),
            prepare=version_table_foreign, backends=BOTH),
    Mistake("version-table-foreign-upgrade", ("upgrade",),
            ("alembic_version", "no version_num column", "version_table="),
            prepare=version_table_foreign, backends=BOTH),
    # Another process holds the database longer than the lock timeout.
    Mistake("application-holds-write-lock-upgrade", ("upgrade",),
            (GAVE_UP_AFTER_1_S, "another process", "running application",
             "FLASK_MIGRATE_LOCK_TIMEOUT"),
            prepare=add_pending_revision, env=LOCK_TIMEOUT, holding=application_writing),
    Mistake("application-holds-write-lock-stamp", ("stamp", FIRST),
            (GAVE_UP_AFTER_1_S, "running application"), env=LOCK_TIMEOUT,
            holding=application_writing),
    # A reader waits as long as SQLite's busy timeout (5 s), then says who is in the way.
    Mistake("application-locks-out-readers", ("current",),
            ("database is locked", "another process", "running application"),
            holding=application_locking_out_readers),
    Mistake("another-migration-holds-the-lock", ("upgrade",),
            (GAVE_UP_AFTER_1_S, "another migration", "FLASK_MIGRATE_LOCK_TIMEOUT"),
            prepare=add_pending_revision, env=LOCK_TIMEOUT, holding=migration_running_elsewhere,
            backends=("postgresql",)),
    # edit without a usable editor.
    Mistake("edit-no-editor", ("edit",), ("editor", "EDITOR="),
            env=lambda backend: {"PATH": os.devnull}),
    Mistake("edit-editor-missing", ("edit",), ("/nonexistent/editor", "EDITOR"),
            env={"EDITOR": "/nonexistent/editor"}),
    # A migrations folder we may not write to.
    Mistake("read-only-folder", ("revision", "-m", "x"), ("versions", "permission"),
            prepare=make_versions_read_only),
    # Options the command does not have (no -x value is interpreted by the runtime).
    Mistake("unknown-option", ("upgrade", "--bogus"), ("--bogus",), status=2),
]

assert len({row.id for row in CATALOG}) == len(CATALOG), "duplicate row ids"


@dataclass
class Outcome:
    """What one row did through one front-end: the run and the snapshots around it."""

    result: Result | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    skipped: str | None = None
    failure: BaseException | None = None


def perform(row: Mistake, project: Project, backend: Backend) -> Outcome:
    """Prepare the project, snapshot it, run the row's command line, snapshot it again."""
    try:
        if row.prepare is not None:
            row.prepare(project)
        before = snapshot(project)
        try:
            held = row.holding(project) if row.holding else contextlib.nullcontext()
            with held:
                result = project.db(*row.args, env=row.environment(backend))
            after = snapshot(project)
        finally:
            # A read-only folder would outlive the test (tmp_path is deleted later).
            if (project.migrations / "versions").is_dir():
                (project.migrations / "versions").chmod(0o755)
    except pytest.skip.Exception as skip:
        return Outcome(skipped=str(skip.msg))
    except Exception as failure:  # reported by the row's own test
        return Outcome(failure=failure)
    return Outcome(result, before, after)


def check(row: Mistake, front: str, outcome: Outcome) -> None:
    """Everything the module docstring promises, for one row through one front-end."""
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    if outcome.failure is not None:
        raise outcome.failure
    result, before, after = outcome.result, outcome.before, outcome.after
    assert result is not None and before is not None and after is not None
    status, says = row.expected(front)
    assert result.returncode == status, str(result)
    errors = error_lines(result)
    assert len(errors) == 1, f"expected one 'Error:' line on stderr\n{result}"
    assert "Error:" not in result.stdout, str(result)
    for fragment in says:
        if isinstance(fragment, re.Pattern):
            assert fragment.search(errors[0]), f"{fragment.pattern!r} missing\n{result}"
        else:
            assert fragment.lower() in errors[0].lower(), f"{fragment!r} missing\n{result}"
    assert FULL_TRACEBACK not in result.output, str(result)
    assert PASSWORD not in result.output, str(result)
    assert_unchanged(before, after, result)


def in_parallel(function: Callable[..., Any], jobs: dict[Any, tuple[Any, ...]]) -> dict[Any, Any]:
    """``{key: function(*args)}``, run side by side: each job mostly waits on a subprocess."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(function, *args) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


SQLITE_ROWS = [row for row in CATALOG if "sqlite" in row.backends]
PG_ROWS = [row for row in CATALOG if "postgresql" in row.backends]


@pytest.fixture(scope="module")
def sqlite_outcomes(states, tmp_path_factory) -> dict[tuple[str, str], Outcome]:
    """(row id, front) -> :class:`Outcome`: every SQLite row through both front-ends.

    The runs are independent (a copy of a starting project each), so they run side by side;
    each (row, front-end) is still checked by a test of its own.
    """
    root = tmp_path_factory.mktemp("sqlite-rows")

    def job(row: Mistake, front: str) -> Outcome:
        where = root / f"{row.id}-{front}"
        where.mkdir()
        backend = _sqlite_backend(where)
        project = copy_state(states[row.state], where / "project", front, backend)
        return perform(row, project, backend)

    return in_parallel(job, {(row.id, front): (row, front)
                             for row in SQLITE_ROWS for front in FRONTS})


@pytest.fixture(scope="module")
def pg_outcomes(states, tmp_path_factory, postgresql_server, pg_role):
    """(row id, front) -> :class:`Outcome` for the PostgreSQL rows, each on a new database."""
    root = tmp_path_factory.mktemp("pg-rows")
    names: list[str] = []

    def job(index: int, row: Mistake, front: str) -> Outcome:
        name = f"errors_{index}_{front}"
        names.append(name)
        backend = _pg_backend(postgresql_server.create_database(name), pg_role)
        where = root / f"{row.id}-{front}"
        where.mkdir()
        project = copy_state(states[row.state], where / "project", front, backend)
        return perform(row, project, backend)

    jobs = {(row.id, front): (index, row, front)
            for index, row in enumerate(PG_ROWS) for front in FRONTS}
    yield in_parallel(job, jobs)
    for name in names:
        postgresql_server.drop_database(name)


@pytest.mark.parametrize("row", SQLITE_ROWS, ids=[row.id for row in SQLITE_ROWS])
def test_mistake_sqlite(row, front, sqlite_outcomes):
    check(row, front, sqlite_outcomes[row.id, front])


@pytest.mark.parametrize("row", PG_ROWS, ids=[row.id for row in PG_ROWS])
def test_mistake_postgresql(row, front, pg_outcomes):
    check(row, front, pg_outcomes[row.id, front])


def test_every_catalog_row_runs():
    """Each row runs on a backend this module has (a row for another one would never run),
    and both kinds of answer are in the catalog: errors (1) and usage errors (2)."""
    assert {row.id for row in SQLITE_ROWS + PG_ROWS} == {row.id for row in CATALOG}
    assert {backend for row in CATALOG for backend in row.backends} <= {"sqlite", "postgresql"}
    assert {row.status for row in CATALOG} == {1, 2}


# ---------------------------------------------------------------------------------------------
# Files of the folder that are missing or odd, where the right answer is that it just works
# ---------------------------------------------------------------------------------------------


def _works(project: Project, *args: str) -> Result:
    result = project.ok(*args)
    assert not error_lines(result) and FULL_TRACEBACK not in result.output, str(result)
    return result


def test_alembic_ini_missing_or_empty_just_works(front, states, tmp_path):
    """Every setting of alembic.ini has a default (the folder itself is -d's, never the
    file's), so a folder without one, or with an empty one, works as before."""
    for case in ("missing", "empty"):
        project = copy_state(states["applied"], tmp_path / case, front,
                             _sqlite_backend(tmp_path))
        ini = project.migrations / "alembic.ini"
        if case == "missing":
            ini.unlink()
        else:
            ini.write_text("")
        add_pending_revision(project)
        assert _works(project, "current").stdout.split() == [SECOND]
        _works(project, "upgrade")
        assert _versions_now(project) == ["next01"]
        _works(project, "revision", "-m", "more")
        assert len(list((project.migrations / "versions").glob("*_more.py"))) == 1


def test_script_location_in_alembic_ini_is_ignored(front, states, tmp_path):
    """As in Flask-Migrate, the folder is the one -d (or Migrate(directory=...)) names; a
    script_location left in alembic.ini, even one naming nothing, changes nothing."""
    project = copy_state(states["applied"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    ini = project.migrations / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]", "[alembic]\nscript_location = nowhere"))
    assert _works(project, "heads").stdout.split() == [SECOND, "(head)"]
    assert not (project.path / "nowhere").exists()


def test_versions_folder_missing_just_works(front, states, tmp_path):
    """No versions/ is an empty history: the reading commands say so, and 'revision' creates
    the folder (Alembic does), as after an init whose empty folder was not committed."""
    project = copy_state(states["fresh"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    shutil.rmtree(project.migrations / "versions")
    assert _works(project, "heads").stdout == ""
    assert _works(project, "history").stdout == ""
    _works(project, "revision", "-m", "first", "--rev-id", "first1")
    assert (project.migrations / "versions" / "first1_first.py").is_file()


def test_revision_without_env_py_content_just_works(front, states, tmp_path):
    """'revision' without --autogenerate writes from script.py.mako and never runs env.py, so
    an empty env.py does not stop it (every command that runs env.py refuses: see above)."""
    project = copy_state(states["applied"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    empty_env_py(project)
    _works(project, "revision", "-m", "more", "--rev-id", "more01")
    assert (project.migrations / "versions" / "more01_more.py").is_file()


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
@pytest.mark.parametrize("damage", [versions_on_one_line, version_empty_string, version_null],
                         ids=lambda damage: damage.__name__)
def test_stamp_purge_repairs_the_version_table(
    backend_name, damage, front, states, tmp_path, request
):
    """The remedy the malformed-row messages give works: 'stamp --purge' replaces the rows."""
    backend = _backend_for(request, backend_name, tmp_path)
    project = copy_state(states["applied"], tmp_path / "project", front, backend)
    damage(project)
    assert project.db("current").returncode == 1
    _works(project, "stamp", "--purge", SECOND)
    assert _versions_now(project) == [SECOND]
    assert _works(project, "current").stdout.split() == [SECOND, "(head)"]


def test_no_application_found(states, tmp_path):
    """FLASK_APP naming nothing: Flask's own usage error (exit 2), before any of our code runs.

    Flask prints its own lines (on Flask 3, "Could not import ..." and then "No such command
    'db'", two ``Error:`` lines), so this is not a catalog row; manage.py imports its app
    itself, so the case does not exist there.
    """
    project = copy_state(states["applied"], tmp_path / "project", "flask",
                         _sqlite_backend(tmp_path))
    before = snapshot(project)
    result = project.db("upgrade", env={"FLASK_APP": "nowhere.py"})
    assert result.returncode == 2, str(result)
    assert "No such command 'db'" in result.stderr, str(result)
    assert FULL_TRACEBACK not in result.output, str(result)
    assert_unchanged(before, snapshot(project), result)


# ---------------------------------------------------------------------------------------------
# A revision script that fails: its revision, message and file, its own frames, and where the
# database was left
# ---------------------------------------------------------------------------------------------

BOOM = """
op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
raise RuntimeError("boom in the script")
"""


def _backend_for(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Backend:
    if name == "sqlite":
        return _sqlite_backend(tmp_path)
    return _pg_backend(request.getfixturevalue("postgresql_url"),
                       request.getfixturevalue("pg_role"))


def _versions_now(project: Project) -> list[str]:
    state = database_state(project.url)
    return (state or {}).get("alembic_version") or []


def assert_script_failure(result: Result, project: Project, revision: str, message: str) -> str:
    """One ``Error:`` line naming the revision, its message, file and the database's state;
    the script's own frames only.  Returns the error line."""
    assert result.returncode == 1, str(result)
    errors = error_lines(result)
    assert len(errors) == 1, str(result)
    error = errors[0]
    path = os.path.join("migrations", "versions", f"{revision}_by_hand.py")
    for fragment in (f"revision {revision}", message, path, "RuntimeError: boom in the script",
                     "fix the script"):
        assert fragment in error, f"{fragment!r} missing\n{result}"
    now = _versions_now(project)
    where = f"left at revision {', '.join(now)}" if now else "left at base"
    assert where in error, f"the database's alembic_version says {now}\n{result}"
    assert FULL_TRACEBACK not in result.output, str(result)
    # The script's frames, and no frame of Alembic, SQLAlchemy or ours.
    assert "Traceback (frames of your script only):" in result.stderr, str(result)
    frames = [line for line in result.stderr.splitlines() if line.lstrip().startswith("File ")]
    assert frames and all(path in line for line in frames), str(result)
    assert 'raise RuntimeError("boom in the script")' in result.stderr, str(result)
    assert PASSWORD not in result.output, str(result)
    return error


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_failing_upgrade_says_where_the_database_was_left(
    backend_name, front, states, tmp_path, request
):
    backend = _backend_for(request, backend_name, tmp_path)
    project = copy_state(states["applied"], tmp_path / "project", front, backend)
    # One good revision, then one that fails half-way: on SQLite the whole run is one
    # transaction, on PostgreSQL each revision has its own; either way the message must say
    # what alembic_version says afterwards.
    create_good = 'op.create_table("good", sa.Column("id", sa.Integer, primary_key=True))'
    write_revision(project, "good01", SECOND, message="a good one", upgrade=create_good,
                   downgrade='op.drop_table("good")')
    write_revision(project, "boom01", "good01", message="explode on purpose", upgrade=BOOM)
    result = project.db("upgrade")
    error = assert_script_failure(result, project, "boom01", "explode on purpose")
    assert _versions_now(project) in ([SECOND], ["good01"]), error


@pytest.mark.parametrize("backend_name", ["sqlite", "postgresql"])
def test_failing_first_revision_leaves_the_database_at_base(
    backend_name, front, states, tmp_path, request
):
    backend = _backend_for(request, backend_name, tmp_path)
    project = copy_state(states["fresh"], tmp_path / "project", front, backend)
    write_revision(project, "boom02", None, message="first and broken", upgrade=BOOM)
    result = project.db("upgrade")
    assert_script_failure(result, project, "boom02", "first and broken")
    assert _versions_now(project) == [], str(result)


def test_failing_downgrade_says_where_the_database_was_left(front, states, tmp_path):
    project = copy_state(states["applied"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    write_revision(project, "boom03", SECOND, message="cannot go back", downgrade=BOOM)
    project.ok("upgrade")
    result = project.db("downgrade")
    assert_script_failure(result, project, "boom03", "cannot go back")
    assert _versions_now(project) == ["boom03"], str(result)


# ---------------------------------------------------------------------------------------------
# FLASK_MIGRATE_TRACEBACK=1, and the help that mentions it
# ---------------------------------------------------------------------------------------------

TRACEBACK_ON = {"FLASK_MIGRATE_TRACEBACK": "1"}


def test_traceback_variable_shows_the_full_traceback(front, states, tmp_path):
    project = copy_state(states["applied"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    # A failure of the invocation: the translated error, with the traceback that led to it.
    result = project.db("upgrade", UNKNOWN, env=TRACEBACK_ON)
    assert result.returncode == 1, str(result)
    assert FULL_TRACEBACK in result.stderr, str(result)
    assert f"revision '{UNKNOWN}' is not in the migrations folder" in result.stderr, str(result)
    assert os.path.join("alembic", "script") in result.stderr, str(result)
    # A failing revision script: every frame, Alembic's included.
    write_revision(project, "boom04", SECOND, message="explode", upgrade=BOOM)
    result = project.db("upgrade", env=TRACEBACK_ON)
    assert result.returncode == 1, str(result)
    assert FULL_TRACEBACK in result.stderr, str(result)
    assert "RuntimeError: boom in the script" in result.stderr, str(result)
    assert os.path.join("alembic", "runtime", "migration.py") in result.stderr, str(result)


@pytest.mark.parametrize("args", [("upgrade", "--help"), ("status", "--help"), ("--help",)],
                         ids=["upgrade", "status", "group"])
def test_help_mentions_the_traceback_variable(args, states, tmp_path):
    """Each command's help ends with it (see also tests/test_spec.py), the group's says it."""
    project = copy_state(states["applied"], tmp_path / "project", None,
                         _sqlite_backend(tmp_path))
    for front in FRONTS:
        result = project.run(front, *args)
        assert result.returncode == 0, str(result)
        assert TRACEBACK_HINT in " ".join(result.stdout.split()), str(result)


# ---------------------------------------------------------------------------------------------
# Output hygiene: data on stdout, messages on stderr, no password anywhere
# ---------------------------------------------------------------------------------------------


def test_data_on_stdout_messages_on_stderr(front, states, tmp_path):
    project = copy_state(states["applied"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))

    def data(*args: str) -> Result:
        result = project.ok(*args)
        assert "INFO" not in result.stdout and "Error" not in result.stdout, str(result)
        return result

    assert data("heads").stdout.split() == [SECOND, "(head)"]
    assert data("current").stdout.split() == [SECOND, "(head)"]
    history = data("history").stdout
    assert f"{FIRST} -> {SECOND} (head), second" in history, history
    assert f"<base> -> {FIRST}, create users" in history, history
    assert f"Rev: {FIRST}" in data("show", FIRST).stdout
    sql = data("downgrade", "--sql", f"{SECOND}:{FIRST}")
    assert "UPDATE alembic_version" in sql.stdout and "UPDATE" not in sql.stderr, str(sql)
    # Messages only: nothing on stdout, what happened on stderr.
    for args, said in ((("downgrade",), "Reverted"), (("upgrade",), "Applied")):
        result = project.ok(*args)
        assert result.stdout == "", str(result)
        assert f"[flask_migrate] {said} " in result.stderr, str(result)


def test_reading_commands_do_not_create_a_sqlite_file(front, states, tmp_path):
    """A database file that does not exist yet reads as an empty database, and stays absent."""
    project = copy_state(states["fresh"], tmp_path / "project", front,
                         _sqlite_backend(tmp_path))
    write_revision(project, "first1", None, message="first")
    database = project.path / "app.db"
    for args in (("current",), ("history", "-i"), ("heads",), ("show", "first1"), ("status",)):
        result = project.db(*args)
        assert result.returncode in (0, 3), str(result)
        assert not database.exists(), f"{' '.join(args)} created the database file\n{result}"


def test_passwords_never_shown(front, states, tmp_path, postgresql_url, pg_role,
                               postgresql_server):
    backend = _pg_backend(postgresql_url, pg_role)
    project = copy_state(states["bare"], tmp_path / "project", front, backend)
    runs = [
        project.ok("init"),
        project.ok("migrate", "-m", "create users"),
        project.ok("upgrade", "--sql"),
        project.ok("upgrade"),
        project.ok("current", "-v"),
        project.ok("history", "-i", "-v"),
        project.ok("status"),
        project.ok("check"),
        project.db("current", env={"DATABASE_URL": backend.unreachable_url}),
        project.db("current", env={"DATABASE_URL": backend.wrong_password_url or ""}),
    ]
    verbose = runs[4].stdout
    assert f"{PG_ROLE}:***@" in verbose, str(runs[4])
    assert f"{PG_ROLE}:***@" in runs[-2].stderr, str(runs[-2])
    for result in runs:
        for secret in (PASSWORD, postgresql_server.password):
            assert secret not in result.output, str(result)
    for name, content in files_state(project.path).items():
        if content is not None:
            for secret in (PASSWORD, postgresql_server.password):
                assert secret.encode() not in content, name


# Flask-SQLAlchemy 2 (the legacy stack) makes its engines lazily, inside our commands; on
# Flask-SQLAlchemy 3 the application's own SQLAlchemy(app) fails first, outside our code.
UNUSABLE_URLS = {
    "unknown-dialect": ("postgresq://ada:s3cr3t-pw@127.0.0.1:1/x", "unknown database kind"),
    "missing-driver": ("mysql://ada:s3cr3t-pw@127.0.0.1:1/x", "MySQLdb"),
    "unparsable": ("postgresql://ada:s3cr@3t-pw:x@127.0.0.1:1/x", "cannot be parsed"),
}


@pytest.mark.skipif(STACK != "legacy", reason="Flask-SQLAlchemy 3 rejects these URLs in the app")
@pytest.mark.parametrize("case", sorted(UNUSABLE_URLS))
def test_an_unusable_database_url_is_named_without_its_password(make_project, front, case):
    url, says = UNUSABLE_URLS[case]
    project = make_project("single")
    project.ok("init")
    result = project.db("current", env={"DATABASE_URL": url})
    assert result.returncode == 1, str(result)
    (error,) = error_lines(result)
    assert "SQLALCHEMY_DATABASE_URI" in error and says in error, str(result)
    assert "Traceback" not in result.stderr
    assert "s3cr" not in result.output and "3t-pw" not in result.output
