"""``db test``: the migration tests on a throwaway database (SPEC section 10).

The histories are written by hand (``tests/apps/tested``: customers and their orders) so that
each case has exactly the flaw it is about.  Every case checks the exit status and the lines,
that the application's own database was never touched, and that the throwaway database (a
SQLite file in a temporary folder, or a database on the PostgreSQL server) is gone afterwards.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import Project, Result, tables
from tests.folders import install
from tests.customers import ADD_TOTAL, CUSTOMER, DROP_TOTAL, ORDERS
from tests.guarantee_helpers import write_revision


def customers_project(
    make_project, migrations_folder: Path, url: str | None = None, **env: str
) -> Project:
    """``tests/apps/tested`` with the stock migrations folder and three good revisions:
    a1 (customers), b2 (orders), c3 (orders.total)."""
    if url is not None:
        env["DATABASE_URL"] = url
    project = make_project("tested", **env)
    shutil.copytree(migrations_folder, project.migrations)
    write_revision(project, "a1", None, CUSTOMER, 'op.drop_table("customer")', "customers")
    write_revision(project, "b2", "a1", ORDERS, 'op.drop_table("orders")', "orders")
    write_revision(project, "c3", "b2", ADD_TOTAL, DROP_TOTAL, "order totals")
    return project


def lines(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if line[:4] in ("PASS", "FAIL", "SKIP")]


def temporary_folder(project: Project) -> dict[str, str]:
    """An environment whose temporary files go to a folder of the test's, to look into."""
    folder = project.path / "tmp"
    folder.mkdir()
    return {"TMPDIR": str(folder)}


ALL_PASS = [
    "PASS single head: c3",
    "PASS upgrade from base to head: 3 revisions",
    "PASS models match the schema",
    "PASS round trip of every revision: 3 revisions",
    "PASS downgrade to base leaves only the version table",
]


def test_a_good_history_passes_on_a_throwaway_file(make_project, migrations_folder, front):
    project = customers_project(make_project, migrations_folder)
    env = temporary_folder(project)
    result = project.db("test", env=env)
    assert result.returncode == 0, str(result)
    assert lines(result) == ALL_PASS
    assert "all 5 passed" in result.stdout
    assert not (project.path / "app.db").exists()  # the application's database: never opened
    assert list((project.path / "tmp").iterdir()) == []  # the throwaway file: removed


def test_a_multidb_history_is_tested_in_every_database(make_project, front):
    project = make_project("multidb")
    project.ok("init", "--multidb")
    project.ok("migrate", "-m", "first")
    project.ok("upgrade")
    project.ok("migrate", "-m", "second", env={"MODEL_VERSION": "2"})
    before = {name: tables(project.env[name]) for name in ("DATABASE_URL", "USERS_URL")}
    result = project.db("test", env={"MODEL_VERSION": "2"})
    assert result.returncode == 0, str(result)
    found = lines(result)
    for database in ("default", "users", "logs"):
        assert f"PASS [{database}] models match the schema" in found
        assert f"PASS [{database}] round trip of every revision: 2 revisions" in found
        assert f"PASS [{database}] downgrade to base leaves only the version table" in found
    after = {name: tables(project.env[name]) for name in ("DATABASE_URL", "USERS_URL")}
    assert after == before
    # Without MODEL_VERSION=2 the models lack what the second revision adds, in every database.
    result = project.db("test")
    assert result.returncode == 1, str(result)
    assert sum(line.startswith("FAIL [") and "models match" in line for line in lines(result)) == 3


def test_a_downgrade_that_forgets_a_column_is_named(make_project, migrations_folder, front):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "c3", "b2", ADD_TOTAL, "pass", "order totals")
    result = project.db("test")
    assert result.returncode == 1, str(result)
    assert lines(result) == [
        "PASS single head: c3",
        "PASS upgrade from base to head: 3 revisions",
        "PASS models match the schema",
        "FAIL round trip of c3 (order totals): after the downgrade, column orders.total is left",
        "SKIP downgrade to base leaves only the version table: not run after the failure of "
        "c3 (order totals)",
    ]


def test_a_downgrade_that_fails_is_named(make_project, migrations_folder):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "b2", "a1", ORDERS, 'op.drop_table("no_such_table")', "orders")
    result = project.run("flask", "test")
    assert result.returncode == 1, str(result)
    failed = [line for line in lines(result) if line.startswith("FAIL")]
    assert len(failed) == 1
    assert failed[0].startswith("FAIL round trip of b2 (orders): downgrade failed: ")
    assert "no_such_table" in failed[0]


def test_a_model_without_a_revision_fails(make_project, migrations_folder, front):
    project = customers_project(make_project, migrations_folder, EXTRA_MODEL="1")
    result = project.db("test")
    assert result.returncode == 1, str(result)
    assert lines(result)[2] == (
        "FAIL models match the schema: the models have changes no revision covers "
        "(add_table invoice); run 'db migrate' to write a revision for them"
    )
    assert lines(result)[3:] == ALL_PASS[3:]


def test_two_heads_fail(make_project, migrations_folder, front):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "d4", "b2", "pass", "pass", "another branch")
    result = project.db("test")
    assert result.returncode == 1, str(result)
    found = lines(result)
    assert found[0].startswith("FAIL single head: 2 heads (")
    assert "run 'db merge heads' to join them" in found[0]
    # The rest is still tested, both branches included.
    assert found[1:] == [
        "PASS upgrade from base to head: 4 revisions",
        "PASS models match the schema",
        "PASS round trip of every revision: 4 revisions",
        "PASS downgrade to base leaves only the version table",
    ]


def test_a_failing_upgrade_stops_the_tests_of_that_database(make_project, migrations_folder):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "d4", "c3", 'op.execute("THIS IS NOT SQL")', "pass", "broken")
    result = project.run("script", "test")
    assert result.returncode == 1, str(result)
    found = lines(result)
    assert found[1].startswith("FAIL upgrade from base to head: d4 (broken) failed: ")
    assert all(line.startswith("SKIP") for line in found[2:]), found


#: Valid on SQLite (a double-quoted string is taken for a literal), not on PostgreSQL (where
#: it names a column).
SQLITE_ONLY = 'op.execute(\'INSERT INTO customer (name) VALUES ("first")\')'


def _databases(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT datname FROM pg_database"))
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def test_a_revision_that_fails_on_postgresql_only(make_project, migrations_folder, postgresql_url):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "d4", "c3", SQLITE_ONLY, 'op.execute("DELETE FROM customer")', "seed")
    assert project.run("flask", "test").returncode == 0  # on SQLite

    on_postgresql = customers_project(make_project, migrations_folder, url=postgresql_url)
    write_revision(on_postgresql, "d4", "c3", SQLITE_ONLY, 'op.execute("DELETE FROM customer")',
                   "seed")
    known = _databases(postgresql_url)
    result = on_postgresql.run("script", "test")
    assert result.returncode == 1, str(result)
    failed = [line for line in lines(result) if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith(
        "FAIL upgrade from base to head: d4 (seed) failed: "
    ), str(result)
    assert "first" in failed[0]
    assert tables(postgresql_url) == set()  # the application's database: untouched
    assert _databases(postgresql_url) == known  # the throwaway database: dropped
    password = sa.engine.make_url(postgresql_url).password
    assert password and password not in result.output

    # The same history, on PostgreSQL, for an application that runs on SQLite.
    result = project.run("flask", "test", "--database", postgresql_url)
    assert result.returncode == 1, str(result)
    assert "FAIL upgrade from base to head: d4 (seed) failed: " in result.stdout


def test_database_must_be_empty_and_not_the_applications(make_project, migrations_folder, front):
    project = customers_project(make_project, migrations_folder)
    project.ok("upgrade")
    result = project.db("test", "--database", project.url)
    assert result.returncode == 2  # usage errors
    assert "names the application's own database" in result.stderr
    other = project.path / "other.db"
    shutil.copy(project.path / "app.db", other)
    result = project.db("test", "--database", f"sqlite:///{other}")
    assert result.returncode == 2
    assert "is not empty (tables alembic_version, customer, orders)" in result.stderr
    empty = project.path / "empty.db"
    result = project.db("test", "--database", f"sqlite:///{empty}")
    assert result.returncode == 0, str(result)
    assert tables(f"sqlite:///{empty}") == {"alembic_version"}


def test_database_is_refused_with_several_databases(make_project):
    project = make_project("multidb")
    assert project.run("flask", "init", "--multidb").returncode == 0
    result = project.run("flask", "test", "--database", "sqlite:///x.db")
    assert result.returncode == 2
    assert "--database names one database and this application has 3" in result.stderr


@pytest.mark.parametrize("kind", ["fm26-custom", "fm4"])
def test_an_old_env_py_is_tested_on_the_throwaway_database(make_project, kind):
    project = make_project("tested")
    install(kind, project.migrations)
    write_revision(project, "a1", None, CUSTOMER, 'op.drop_table("customer")', "customers")
    write_revision(project, "b2", "a1", ORDERS, 'op.drop_table("orders")', "orders")
    write_revision(project, "c3", "b2", ADD_TOTAL, DROP_TOTAL, "order totals")
    env = temporary_folder(project)
    result = project.run("flask", "test", env=env)
    assert result.returncode == 0, str(result)
    assert lines(result) == ALL_PASS
    assert not (project.path / "app.db").exists()
    assert list((project.path / "tmp").iterdir()) == []


def _mariadb_databases(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return {row[0] for row in connection.execute(sa.text("SHOW DATABASES"))}
    finally:
        engine.dispose()


#: The databases on the server of a URL, per backend.
SERVER_DATABASES = {"postgresql": _databases, "mariadb": _mariadb_databases}


@pytest.mark.parametrize("backend", sorted(SERVER_DATABASES))
def test_a_good_history_passes_on_a_throwaway_server_database(
    make_project, migrations_folder, backend, request
):
    url = request.getfixturevalue(f"{backend}_url")
    server_databases = SERVER_DATABASES[backend]
    project = customers_project(make_project, migrations_folder, url=url)
    known = server_databases(url)
    result = project.run("flask", "test")
    assert result.returncode == 0, str(result)
    assert lines(result) == ALL_PASS
    assert server_databases(url) == known  # the throwaway database: dropped
    assert tables(url) == set()  # the application's database: untouched


def test_a_forgotten_column_is_found_on_mariadb(make_project, migrations_folder, mariadb_url):
    """MariaDB commits each DDL statement by itself: the round trip still finds the column a
    downgrade forgot."""
    project = customers_project(make_project, migrations_folder, url=mariadb_url)
    write_revision(project, "c3", "b2", ADD_TOTAL, "pass", "order totals")
    known = _mariadb_databases(mariadb_url)
    result = project.run("script", "test")
    assert result.returncode == 1, str(result)
    assert lines(result)[3] == (
        "FAIL round trip of c3 (order totals): after the downgrade, column orders.total is left"
    )
    assert _mariadb_databases(mariadb_url) == known
    assert tables(mariadb_url) == set()
    password = sa.engine.make_url(mariadb_url).password
    assert password and password not in result.output


#: An upgrade that says it has started (the file named by FM_STARTED), then waits for Ctrl-C.
WAITS_FOR_CTRL_C = '''
open(os.environ["FM_STARTED"], "w").close()
time.sleep(60)
'''


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupted(project: Project, env: dict[str, str],
                 signum: int = signal.SIGINT) -> tuple[int, str, str]:
    """Run ``flask db test``, press Ctrl-C (SIGINT, or send ``signum``) once revision d4's
    upgrade is running, and return its exit status, stdout and stderr."""
    started = project.path / "started"
    process = subprocess.Popen(
        project.command("flask", "test"), cwd=project.path,
        env=project.environment({**env, "FM_STARTED": str(started)}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # As at a terminal: scripts/test runs the suite as a background job, whose children
        # inherit an ignored SIGINT (and Python then installs no handler of its own).
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), process.communicate(timeout=30)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stdout, stderr


def test_ctrl_c_drops_the_throwaway_postgresql_database(
    make_project, migrations_folder, postgresql_url
):
    project = customers_project(make_project, migrations_folder, url=postgresql_url)
    write_revision(project, "d4", "c3", WAITS_FOR_CTRL_C, "pass", "slow")
    known = _databases(postgresql_url)
    status, stdout, stderr = _interrupted(project, {})
    assert status == 130, (stdout, stderr)
    assert stderr.splitlines() == [
        "Error: interrupted; the throwaway databases db test made have been removed"
    ]
    assert _databases(postgresql_url) == known  # no database left on the server
    assert tables(postgresql_url) == set()


@pytest.mark.parametrize("signum, status, stopped", [
    (signal.SIGINT, 130, "interrupted"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),  # a container, or a CI job, being stopped
])
def test_ctrl_c_removes_the_temporary_sqlite_file(make_project, migrations_folder, signum,
                                                  status, stopped):
    project = customers_project(make_project, migrations_folder)
    write_revision(project, "d4", "c3", WAITS_FOR_CTRL_C, "pass", "slow")
    env = temporary_folder(project)
    returned, stdout, stderr = _interrupted(project, env, signum)
    assert returned == status, (stdout, stderr)
    assert stderr.splitlines() == [
        f"Error: {stopped}; the throwaway databases db test made have been removed"
    ]
    assert list((project.path / "tmp").iterdir()) == []
    assert not (project.path / "app.db").exists()
