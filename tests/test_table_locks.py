"""``db upgrade`` does not make the application's queries wait behind it.

A session of "the application" holds a lock on a table (an open transaction that read it) that
a revision alters.  Without a lock timeout the ``ALTER TABLE`` would wait for it, and every
query on the table would queue behind the ``ALTER``.  With one, the revision gives up after the
timeout, is rolled back and tried again: the upgrade succeeds once the holder lets go, or fails
with one line, the database at the revision before.  Meanwhile a third session, whose own
queries give up after a few times the migration's timeout, reads the table throughout: none of
its queries fails, so none waited that long.

Real servers (PostgreSQL, MariaDB), real processes; both front-ends.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.conftest import Project, Result, columns
from tests.guarantee_helpers import (
    create_table,
    database_url,
    error_line,
    guarded_project,
    progress_lines,
    state,
    write_revision,
)

BACKENDS = ["postgresql", "mariadb"]
TIMEOUT = "1"  # seconds: MariaDB's lock waits are whole seconds
#: How long a query of the application's reader may wait for a lock: a generous multiple of the
#: migration's timeout, so that a loaded machine does not make it fail.
READER_LIMIT = 10 * int(TIMEOUT)


@contextmanager
def holding_a_lock(url: str, table: str) -> Iterator[sa.engine.Transaction]:
    """A session with an open transaction that has read ``table``: its lock stays until the
    block ends, or until the test rolls back the transaction it is given."""
    engine = sa.create_engine(url, poolclass=NullPool)
    connection = engine.connect()
    try:
        transaction = connection.begin()
        connection.execute(sa.text(f"SELECT * FROM {table}")).fetchall()
        yield transaction
        if transaction.is_active:
            transaction.rollback()
    finally:
        connection.close()
        engine.dispose()


class Reader(threading.Thread):
    """Reads ``table`` again and again, each query allowed to wait ``limit`` seconds for a
    lock; collects the errors of the queries that waited longer."""

    def __init__(self, url: str, table: str, limit: int) -> None:
        super().__init__(daemon=True)
        self.url, self.table, self.limit = url, table, limit
        self.queries = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                if engine.dialect.name == "postgresql":
                    limit = f"SET lock_timeout = {self.limit * 1000}"
                else:
                    limit = f"SET SESSION lock_wait_timeout = {self.limit}"
                with connection.begin():
                    connection.execute(sa.text(limit))
                while not self.stop.is_set():
                    try:
                        with connection.begin():
                            connection.execute(sa.text(f"SELECT * FROM {self.table}")).all()
                        self.queries += 1
                    except sa.exc.DBAPIError as error:
                        self.errors.append(str(error.orig))
                    time.sleep(0.05)
        finally:
            engine.dispose()


def at_r1(make_project, migrations_folder, request, backend: str, front: str) -> Project:
    """A project on a fresh database of ``backend`` with r1 (creates t1) applied and r2 (adds
    a column to t1, so its ALTER TABLE needs t1's lock) to come."""
    project = guarded_project(make_project, migrations_folder, database_url(backend, request))
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", 'op.add_column("t1", sa.Column("x", sa.Integer))')
    result = project.run(front, "upgrade", "r1")
    assert result.returncode == 0, str(result)
    return project


def retries(result: Result) -> list[str]:
    """The lines announcing a retry of a revision that waited too long for a lock."""
    return [line for line in result.stderr.splitlines() if "trying again" in line]


@pytest.mark.parametrize("backend, front", [("postgresql", "flask"), ("mariadb", "script")])
def test_upgrade_retries_until_the_application_lets_go(
    make_project, migrations_folder, request, runs, backend, front
):
    project = at_r1(make_project, migrations_folder, request, backend, front)
    url = project.url

    reader = Reader(url, "t1", limit=READER_LIMIT)
    with holding_a_lock(url, "t1") as holder:
        reader.start()
        run = runs(project, front, "upgrade", "--table-lock-timeout", TIMEOUT,
                   "--lock-retries", "10")
        # Hold on past the reader's own limit: had the ALTER TABLE waited for the lock (no
        # timeout), the reader's queries would queue behind it for that long and fail.  The
        # run keeps giving up and trying again meanwhile (the second retry, at least).
        run.wait_for(run.printed("(attempt 3 of 11)"), "the second retry", timeout=120)
        held_from = reader.queries
        time.sleep(READER_LIMIT + 1)
        assert "x" not in columns(url, "t1")
        queries_while_held = reader.queries - held_from
        holder.rollback()  # the application's transaction ends
        result = run.result(timeout=120)
    reader.stop.set()
    reader.join(30)
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1"}, {"r2"}), str(result)
    assert "x" in columns(url, "t1"), str(result)
    # The outcome, not how long it took: each attempt that timed out was announced, in order,
    # and the retries stopped once the lock was free (well before the last of the 11).
    announced = retries(result)
    attempts = [int(line.rsplit("(attempt ", 1)[1].split(" ")[0]) for line in announced]
    assert attempts == list(range(2, len(attempts) + 2)) and len(attempts) < 10, str(result)
    assert f"revision r2 (revision r2) waited more than {TIMEOUT} s for a lock" in announced[0]
    assert progress_lines(result, "Applied r2"), str(result)
    # The application's other queries went on, also while the migration was retrying: none
    # waited the reader's limit for a lock.
    assert queries_while_held > 0 and reader.errors == [], (queries_while_held, reader.errors)


@pytest.mark.parametrize("backend, front", [("postgresql", "script"), ("mariadb", "flask")])
def test_upgrade_gives_up_after_its_retries(
    make_project, migrations_folder, request, backend, front
):
    project = at_r1(make_project, migrations_folder, request, backend, front)
    write_revision(project, "r3", "r2", create_table("t3"))
    url = project.url

    with holding_a_lock(url, "t1"):
        result = project.run(
            front, "upgrade", "--table-lock-timeout", TIMEOUT, "--lock-retries", "1"
        )
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.stderr, str(result)
    line = error_line(result)
    assert line.startswith(
        f"Error: revision r2 (revision r2) waited more than {TIMEOUT} s for a lock that "
        "another session holds, 2 times, at: ALTER TABLE t1 ADD"), str(result)
    assert "the database is at r1" in line and "--table-lock-timeout" in line, str(result)
    assert "fix the script" not in line, str(result)
    assert state(url) == ({"t1"}, {"r1"}), str(result)
    assert "x" not in columns(url, "t1")

    # Once the application has let go, the same command completes.
    result = project.run(front, "upgrade", env={"FLASK_MIGRATE_TABLE_LOCK_TIMEOUT": TIMEOUT})
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t3"}, {"r3"}), str(result)


def test_statement_timeout_names_the_revision(make_project, migrations_folder, postgresql_url):
    project = guarded_project(
        make_project, migrations_folder, postgresql_url, FLASK_MIGRATE_STATEMENT_TIMEOUT="0.5"
    )
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", [create_table("t2"), 'op.execute("SELECT pg_sleep(5)")'])
    result = project.run("flask", "upgrade")
    assert result.returncode == 1, str(result)
    line = error_line(result)
    assert line.startswith(
        "Error: revision r2 (revision r2) was stopped after 0.5 s (the statement timeout), at: "
        "SELECT pg_sleep(5)"), str(result)
    assert "the database is at r1" in line, str(result)
    assert state(postgresql_url) == ({"t1"}, {"r1"}), str(result)


@pytest.mark.parametrize("value, source", [
    ("soon", "--table-lock-timeout"), ("-1", "--table-lock-timeout"),
])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bad_setting_is_one_line(make_project, migrations_folder, request, backend, value, source):
    """Read on every database, SQLite too (where no lock timeout is set)."""
    url = database_url(backend, request)
    project = guarded_project(make_project, migrations_folder, url)
    write_revision(project, "r1", None, create_table("t1"))
    result = project.run("script", "upgrade", "--table-lock-timeout", value)
    assert result.returncode == 1, str(result)
    assert error_line(result) == (
        f"Error: {source} must be a number of seconds (0 or more), not '{value}'"), str(result)
    assert state(url or project.url) == (set(), set())
