"""Folders written by older Flask-Migrates keep working as their authors meant (SPEC section 7).

The folders are those of ``tests/folders.py``: hand-written in the shape of each generation of
the original Flask-Migrate (1.x-4.x) and of the edits people made to them.  The guarantees
themselves (lock, atomic SQLite, progress) are tested over every one of these folders in
``tests/test_guarantees.py`` and ``tests/test_concurrency.py``, the workflows in
``tests/test_workflow.py`` and ``tests/test_multidb.py``; this module tests what is particular
to old env.py files:

- a keyword env.py passes to ``configure()`` by name next to ``**configure_args`` wins over the
  same key given to ``Migrate(...)`` (no ``TypeError``);
- a URL an old env.py copies from ``SQLALCHEMY_DATABASE_URI`` names the database the
  application really uses, relative SQLite paths included;
- in-process, their ``fileConfig()`` leaves the application's logging as it was;
- the asyncio env.py of Flask-Migrate 4 runs on Flask-SQLAlchemy's engine;
- an env.py can opt out of the guarantees, which shows they come from the command.
"""
from __future__ import annotations

import json
import textwrap

import pytest

from tests.conftest import STACK, Project, columns, tables, versions
from tests.folders import install
from tests.guarantee_helpers import create_table, fail_when, run_python, state, write_revision
from tests.workflow_helpers import add_to_env_py, error_lines


def old_project(make_project, app: str, kind: str, **env: str) -> Project:
    project = make_project(app, **env)
    install(kind, project.migrations)
    return project


# -- configure() keywords ----------------------------------------------------------------------


def test_explicit_configure_keyword_wins_over_configure_args(make_project, front):
    """fm26-custom passes compare_type=True (and more) next to **configure_args; the app says
    compare_type=False.  Every online command used to fail with a TypeError; now they work, and
    env.py's own True is what autogenerate uses: a type change is found."""
    options = {"compare_type": False, "compare_server_default": False, "render_as_batch": True}
    project = old_project(
        make_project, "guarded", "fm26-custom", MIGRATE_OPTIONS=json.dumps(options)
    )
    write_revision(project, "r1", None, """
        op.create_table("note", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("text", sa.String(50)))
    """)
    for args in (("current",), ("upgrade",), ("current",)):
        result = project.db(*args)
        assert result.returncode == 0, str(result)
        assert "TypeError" not in result.output, str(result)
    assert versions(project.url) == {"r1"}  # in schema_history, env.py's own version_table
    assert "schema_history" in tables(project.url) and "alembic_version" not in tables(project.url)

    # The model says String(100): only compare_type=True sees the difference.
    result = project.db("check")
    assert result.returncode == 1, str(result)
    [error] = error_lines(result)
    assert "modify_type" in error, str(result)


def test_explicit_configure_keyword_wins_in_a_multi_database_env_py(make_project, front):
    options = {"compare_type": False, "compare_server_default": False}
    project = old_project(
        make_project, "multidb", "fm26-multidb-custom", MIGRATE_OPTIONS=json.dumps(options)
    )
    result = project.db("migrate", "-m", "one")
    assert result.returncode == 0, str(result)
    assert len(project.revision_files()) == 1, str(result)
    result = project.db("upgrade")
    assert result.returncode == 0, str(result)
    result = project.db("status")
    assert result.returncode == 0, str(result)
    for label in ("default", "users", "logs"):
        assert f"Database {label} (" in result.stdout, str(result)
    assert result.stdout.count("status:  up to date") == 3, str(result)


# -- URLs -----------------------------------------------------------------------------------------


ENGINE_FILE = '''
from app import app, db

with app.app_context():
    print(db.engine.url.database)
'''


@pytest.mark.parametrize("kind", ["fm1", "fm20"])
def test_relative_sqlite_url_copied_from_the_config_is_the_application_s_database(
    make_project, kind, front
):
    """fm1 and fm20 copy SQLALCHEMY_DATABASE_URI into sqlalchemy.url as it is configured.
    Flask-SQLAlchemy resolves a relative SQLite path (3.x: in the instance folder, 2.x: in the
    application's folder), so the migration must run on that file, not on one in the working
    directory."""
    project = old_project(make_project, "guarded", kind, DATABASE_URL="sqlite:///relative.db")
    write_revision(project, "r1", None, create_table("t1"))
    script = project.path / "engine_file.py"
    script.write_text(textwrap.dedent(ENGINE_FILE), encoding="utf-8")
    app_file = run_python(project, script).stdout.strip().splitlines()[-1]

    result = project.db("upgrade")
    assert result.returncode == 0, str(result)
    assert state(f"sqlite:///{app_file}") == ({"t1"}, {"r1"}), str(result)
    stray = project.path / "relative.db"
    if stray.resolve() != (project.path / app_file).resolve():
        assert not stray.exists(), f"the migration ran on {stray}, not on {app_file}"


# -- Logging --------------------------------------------------------------------------------------


LOGGING_SCRIPT = '''
import json
import logging

import flask_migrate
from app import app

records = []


class Keep(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())


own = logging.getLogger("myapp")
own.setLevel(logging.INFO)
own.addHandler(Keep())
root_handlers = list(logging.getLogger().handlers)

with app.app_context():
    flask_migrate.upgrade()
own.info("after the upgrade")
print(json.dumps({
    "disabled": own.disabled,
    "records": records,
    "root_same": logging.getLogger().handlers == root_handlers,
    "alembic_level": logging.getLogger("alembic").level,
}))
'''


@pytest.mark.parametrize("kind", ["fm26", "fm4"])
def test_file_config_leaves_the_application_s_logging_alone_in_process(make_project, kind):
    """The env.py of Flask-Migrate 1.x-4.x calls logging.config.fileConfig(), which disabled
    every logger of a process that ran a command in-process."""
    project = old_project(make_project, "guarded", kind)
    write_revision(project, "r1", None, create_table("t1"))
    script = project.path / "in_process.py"
    script.write_text(textwrap.dedent(LOGGING_SCRIPT), encoding="utf-8")
    report = json.loads(run_python(project, script).stdout.strip().splitlines()[-1])
    assert report == {
        "disabled": False, "records": ["after the upgrade"], "root_same": True,
        "alembic_level": 0,
    }, report
    assert versions(project.url) == {"r1"}


# -- asyncio --------------------------------------------------------------------------------------


@pytest.mark.skipif(
    STACK == "legacy",
    reason="Flask 1.1's application context does not reach the greenlet that run_sync() uses",
)
def test_flask_migrate_4_asyncio_env_py(make_project, front):
    """Flask-Migrate 4's aioflask env.py expects an AsyncEngine; Flask-SQLAlchemy makes a
    synchronous Engine with an async driver, on which it failed (MissingGreenlet)."""
    project = old_project(make_project, "asyncdb", "fm4-async")
    result = project.db("migrate", "-m", "notes")
    assert result.returncode == 0, str(result)
    url = project.url.replace("+aiosqlite", "")
    result = project.db("upgrade")
    assert result.returncode == 0, str(result)
    assert set(columns(url, "note")) == {"id", "body"}, str(result)
    assert "[flask_migrate] Applied" in result.stderr, str(result)
    result = project.db("current")
    assert result.returncode == 0 and "(head)" in result.stdout, str(result)
    result = project.db("downgrade")
    assert result.returncode == 0, str(result)
    assert "note" not in tables(url), str(result)


# -- Opting out -------------------------------------------------------------------------------------


OPT_OUT = 'context.config.attributes["flask_migrate.guarantees"] = False\n'


def test_an_env_py_can_opt_out_of_the_guarantees(make_project, front):
    """With the documented opt-out, env.py runs as plain Alembic would run it: on SQLite a
    failing revision then leaves its first table behind, and no progress is reported."""
    project = old_project(make_project, "guarded", "fm26")
    add_to_env_py(project, OPT_OUT)
    write_revision(project, "r1", None, [create_table("t1"), fail_when("FAIL_IN", "upgrade")])
    result = project.db("upgrade", env={"FAIL_IN": "upgrade"})
    assert result.returncode == 1, str(result)
    assert state(project.url) == ({"t1"}, set()), "without the guarantees, half of r1 stays"
    assert "[flask_migrate] Applied" not in result.stderr

    (project.migrations / "env.py").write_text(
        (project.migrations / "env.py").read_text(encoding="utf-8").replace(OPT_OUT, ""),
        encoding="utf-8",
    )
    project.path.joinpath("app.db").unlink()
    result = project.db("upgrade", env={"FAIL_IN": "upgrade"})
    assert result.returncode == 1, str(result)
    assert state(project.url) == (set(), set()), "with them, the run is rolled back whole"


def test_two_databases_on_one_sqlite_file_is_one_line_not_a_wait(make_project, front):
    """The multi-database env.py of 2.x-4.x keeps every database's transaction open until the
    end: two binds on one SQLite file would wait for each other's write lock."""
    project = old_project(make_project, "multidb", "fm4-multidb")
    shared = f"sqlite:///{project.path / 'shared.db'}"
    project.env.update(USERS_URL=shared, LOGS_URL=shared, FLASK_MIGRATE_LOCK_TIMEOUT="60")
    result = project.db("upgrade", timeout=30)
    assert result.returncode == 1, str(result)
    [error] = error_lines(result)
    assert "the users and logs databases are the same SQLite file" in error, str(result)
    assert "Traceback" not in result.output, str(result)
