"""Faults in the middle of a run: the process killed outright, the database server gone.

A ``db upgrade`` of a long history runs as a real process (both front-ends) and is stopped in
the middle of one slow revision, by SIGKILL (nothing of ours runs: no rollback, no release,
no message) or by its database connection going away (an administrator ending the session,
the server stopping).  Afterwards:

- the version table matches the schema, at a revision boundary: every table of the revisions
  up to the recorded one exists, none of the later ones does;
- no migration lock is left behind: the next run starts applying at once.  A killed run's
  session goes when the server sees its connection close; while the session runs a statement,
  PostgreSQL looks only because the runtime asks it to (``client_connection_check_interval``,
  see :mod:`flask_migrate.runtime.locks`), MariaDB on its own;
- the next ``db upgrade`` completes;
- a run that lost its connection says so in one ``Error:`` line (no traceback, no password,
  exit status 1), naming the revision and where the database is.

MariaDB commits each DDL statement on its own, so no transaction undoes half a revision there:
its slow revision runs no DDL (it only sleeps), which keeps every stop at a boundary.
"""
from __future__ import annotations

import fcntl
import os
from typing import Callable, Iterator

import pytest
import sqlalchemy as sa

from flask_migrate.runtime import locks
from tests.conftest import Project, Result
from tests.guarantee_helpers import (
    create_table,
    database_url,
    error_line,
    execute,
    guarded_project,
    pause_when,
    progress_lines,
    run_python,
    scalars,
    state,
    write_revision,
)
from tests.processes import wait_until
from tests.servers import PostgresServer

#: The length of the history, and the revision that takes its time (the run is stopped there).
REVISIONS = 60
SLOW = 30
#: The environment variable that makes the slow revision slow (the run after the fault is not).
SLOW_VAR = "SLOW"


def name(number: int) -> str:
    return f"r{number:02d}"


def table(number: int) -> str:
    return f"t{number:02d}"


def long_history(project: Project, sleep: str, slow_ddl: bool = True) -> None:
    """r01..r60, each creating its table; r30 creates t30 (unless not ``slow_ddl``), then,
    with $SLOW set, touches the file $MARKER and runs ``sleep`` (a line of Python)."""
    for number in range(1, REVISIONS + 1):
        body = [create_table(table(number))]
        if number == SLOW:
            body = body if slow_ddl else []
            body.append(pause_when(SLOW_VAR, sleep))
        previous = name(number - 1) if number > 1 else None
        write_revision(project, name(number), previous, body, f'op.drop_table("{table(number)}")')


def assert_at_boundary(url: str, created: Callable[[int], bool] = lambda number: True) -> int:
    """The version table names one revision (or none), and the tables are exactly those of the
    revisions up to it (of those that create one); returns its number (0 for base)."""
    tables, recorded = state(url)
    assert len(recorded) <= 1, recorded
    at = int(next(iter(recorded))[1:]) if recorded else 0
    expected = {table(number) for number in range(1, at + 1) if created(number)}
    assert tables == expected, f"at {name(at)}: {sorted(tables ^ expected)} differ"
    return at


def assert_next_run_completes(
    project: Project, front: str, url: str, created: Callable[[int], bool] = lambda number: True
) -> Result:
    """The next upgrade takes the lock at once and reaches the head."""
    result = project.run(front, "upgrade", env={"FLASK_MIGRATE_LOCK_TIMEOUT": "20"})
    assert result.returncode == 0, str(result)
    assert "Waiting for another migration" not in result.stderr, str(result)
    assert assert_at_boundary(url, created) == REVISIONS, str(result)
    return result


def lock_held(backend: str, url: str) -> bool:
    """Whether someone holds the migration lock of the database at ``url``."""
    if backend == "postgresql":
        return scalars(url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") != [0]
    if backend == "mariadb":
        name = locks.lock_name("alembic_version", None, database(url))
        return scalars(url, f"SELECT IS_USED_LOCK('{name}')") != [None]
    path = locks.sqlite_lock_path(sa.engine.make_url(url))
    if path is None or not os.path.exists(path):
        return False
    descriptor = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # also lets go of a lock just taken
    return False


def assert_lock_free(backend: str, url: str) -> None:
    """Nobody holds the migration lock, once a server has seen the killed client's connection
    close (which takes it a moment); a process's flock() goes with it."""
    wait_until(lambda: not lock_held(backend, url), "the migration lock to be released", 10)


def database(url: str) -> str:
    return url.rsplit("/", 1)[1]


#: Finds the migration's session on the server: the one running the slow revision's sleep.
SESSIONS = {
    "postgresql": "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                  "AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
    "mariadb": "SELECT id FROM information_schema.processlist WHERE db = DATABASE() "
               "AND info LIKE '%SLEEP(%' AND id <> CONNECTION_ID()",
}
#: Ends that session, as an administrator would.
END_SESSION = {
    "postgresql": "SELECT pg_terminate_backend({})",
    "mariadb": "KILL CONNECTION {}",
}
#: The slow revision's sleep, on the server: DML only, so that it leaves no DDL behind on
#: MariaDB (which commits each DDL statement on its own).
SLEEP = {
    "postgresql": 'op.execute("SELECT pg_sleep(60)")',
    "mariadb": 'op.execute("SELECT SLEEP(60)")',
}


# -- SIGKILL ------------------------------------------------------------------------------------

#: The slow revision's sleep in the process (the session idles on the server meanwhile), or on
#: the server (it runs a statement, as a long data migration or index build does).
CLIENT_SLEEP = "time.sleep(60)"

KILL_CASES = [
    # backend, front-end, Migrate(...) options, the slow revision's sleep, where the kill leaves
    # the database: at the start (the run is one transaction), or at the revision before the
    # slow one (one transaction per revision; MariaDB commits every statement), id
    ("sqlite", "flask", "{}", CLIENT_SLEEP, 0, "sqlite"),
    ("sqlite", "script", '{"transaction_per_migration": true}', CLIENT_SLEEP, SLOW - 1,
     "sqlite-per-migration"),
    ("postgresql", "script", "{}", CLIENT_SLEEP, SLOW - 1, "postgresql"),
    ("postgresql", "flask", '{"transaction_per_migration": false}', CLIENT_SLEEP, 0,
     "postgresql-one-transaction"),
    ("postgresql", "flask", "{}", "SERVER", SLOW - 1, "postgresql-in-a-statement"),
    ("mariadb", "flask", "{}", CLIENT_SLEEP, SLOW - 1, "mariadb"),
    ("mariadb", "script", "{}", "SERVER", SLOW - 1, "mariadb-in-a-statement"),
]


@pytest.mark.parametrize(
    "backend, front, options, sleep, ends_at", [case[:-1] for case in KILL_CASES],
    ids=[case[-1] for case in KILL_CASES],
)
def test_sigkill_halfway_leaves_a_boundary_and_no_lock(
    make_project, migrations_folder, request, runs, tmp_path, backend, front, options, sleep,
    ends_at,
):
    """Killed in the middle of r30 of 60: where the database is depends on its transactions,
    but it is a boundary; the server releases the lock as soon as it sees the connection close,
    even while it is running a statement of the killed run's."""
    marker = tmp_path / "slow-started"
    project = guarded_project(
        make_project, migrations_folder, database_url(backend, request),
        MARKER=str(marker), MIGRATE_OPTIONS=options,
    )
    created = lambda number: backend != "mariadb" or number != SLOW  # noqa: E731
    long_history(project, SLEEP[backend] if sleep == "SERVER" else sleep, created(SLOW))
    url = project.url

    run = runs(project, front, "upgrade", env={SLOW_VAR: "1"})
    run.wait_for(marker.exists, f"{name(SLOW)} to start")
    if sleep == "SERVER":
        run.wait_for(lambda: bool(scalars(url, SESSIONS[backend])), "the sleep to start")
    assert lock_held(backend, url)
    run.kill()
    stderr = run.stderr()
    assert f"Applying {name(SLOW)}" in stderr, stderr
    assert f"Applied {name(SLOW - 1)}" in stderr, stderr

    assert_lock_free(backend, url)
    assert assert_at_boundary(url, created) == ends_at, stderr
    assert_next_run_completes(project, front, url, created)


# -- The connection lost ------------------------------------------------------------------------

def assert_connection_lost(result: Result, password: str, at: str) -> None:
    """Exit status 1 and one line: the connection was lost in the slow revision, where the
    database is, and that the command can be run again."""
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.output, str(result)
    assert password not in result.output, str(result)
    line = error_line(result)
    assert line.startswith("Error: the connection to the database was lost during revision "
                           f"{name(SLOW)}"), str(result)
    assert at in line and "run 'db upgrade' again" in line, str(result)


@pytest.mark.parametrize("backend, front", [("postgresql", "flask"), ("mariadb", "script")])
def test_session_ended_by_the_server(
    make_project, migrations_folder, request, runs, tmp_path, backend, front
):
    """An administrator ends the migration's session in the middle of a revision."""
    server = request.getfixturevalue(f"{backend}_server")
    marker = tmp_path / "slow-started"
    project = guarded_project(
        make_project, migrations_folder, database_url(backend, request), MARKER=str(marker),
    )
    created = lambda number: backend != "mariadb" or number != SLOW  # noqa: E731
    long_history(project, SLEEP[backend], slow_ddl=created(SLOW))
    url = project.url

    run = runs(project, front, "upgrade", env={SLOW_VAR: "1"})
    sessions: list = []
    run.wait_for(lambda: sessions.extend(scalars(url, SESSIONS[backend])) or sessions,
                 f"{name(SLOW)} to start its sleep")
    execute(url, END_SESSION[backend].format(sessions[0]))
    result = run.result()

    assert_connection_lost(result, server.password, f"the database was left at revision "
                                                    f"{name(SLOW - 1)}")
    assert progress_lines(result, f"Applied {name(SLOW - 1)}"), str(result)
    assert assert_at_boundary(url, created) == SLOW - 1, str(result)
    assert not lock_held(backend, url)
    assert_next_run_completes(project, front, url, created)


@pytest.fixture
def private_postgresql(postgresql_server: PostgresServer) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test's own, to stop and start again (the session's server,
    asked for only to skip or fail as every PostgreSQL test does, is shared by every test)."""
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_server_stopped_in_the_middle(
    make_project, migrations_folder, runs, tmp_path, private_postgresql
):
    """The database server stops (an administrator's fast shutdown: every session ended,
    every open transaction rolled back) while a revision runs, then comes back."""
    server = private_postgresql
    url = server.create_database("faults")
    marker = tmp_path / "slow-started"
    project = guarded_project(make_project, migrations_folder, url, MARKER=str(marker))
    long_history(project, SLEEP["postgresql"])

    run = runs(project, "script", "upgrade", env={SLOW_VAR: "1"})
    run.wait_for(lambda: bool(scalars(url, SESSIONS["postgresql"])),
                 f"{name(SLOW)} to start its sleep")
    # The fixture's own stop() would also delete the data; only the server process goes here.
    server._shutdown()
    result = run.result()
    server._launch()

    # Nothing could be read while the server was down: the user is told how to find out.
    assert_connection_lost(result, server.password, "check 'db current' once it is back")
    assert assert_at_boundary(url) == SLOW - 1, str(result)
    assert not lock_held("postgresql", url)
    assert_next_run_completes(project, "flask", url)


# What the in-process test runs: an upgrade, then the application's own session, on a pool of
# one connection, so that the session gets the connection the migration used.
IN_PROCESS_SCRIPT = """
import sqlalchemy as sa

import flask_migrate
from app import app, db

app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"pool_size": 1, "max_overflow": 0}
with app.app_context():
    flask_migrate.upgrade()
    print(db.session.execute(sa.text("SHOW client_connection_check_interval")).scalar())
"""


def test_postgresql_session_watches_its_client_only_while_migrating(
    make_project, migrations_folder, postgresql_url, tmp_path
):
    """The migration's session checks for its client every second; the application's pooled
    connection gets its own setting back."""
    seen = tmp_path / "seen"
    project = guarded_project(make_project, migrations_folder, postgresql_url, SEEN=str(seen))
    write_revision(project, "r1", None, """
        setting = op.get_bind().execute(sa.text("SHOW client_connection_check_interval"))
        with open(os.environ["SEEN"], "w") as file:
            file.write(setting.scalar())
    """)
    script = project.path / "in_process.py"
    script.write_text(IN_PROCESS_SCRIPT, encoding="utf-8")

    result = run_python(project, script)

    assert seen.read_text() == "1s"
    assert result.stdout.strip().splitlines()[-1] == "0", str(result)
