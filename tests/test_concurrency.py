"""Several ``db upgrade`` runs on one database at once, and the bounded wait for the lock
(SPEC section 5, "Safe concurrent upgrades"), on SQLite, PostgreSQL and MariaDB.

Replicas that start together must serialize: each revision is applied once, and every run
exits 0.  The test starts eight real command-line runs (both front-ends) and holds them at a
starting line in env.py until all eight are there, so that they reach the migration lock
together.  A revision that sleeps makes the others wait for certain, and every revision logs
its run both to a table and to a file opened for appending, so that a revision run twice (even
one whose transaction was rolled back) shows.

The bounded wait is tested against a lock the test itself holds, taken the way the runtime
takes it (:mod:`flask_migrate.runtime.locks`): PostgreSQL's advisory lock, MariaDB's
``GET_LOCK``, SQLite's write lock (``BEGIN IMMEDIATE``).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from flask_migrate.runtime import locks
from tests.conftest import Project
from tests.guarantee_helpers import (
    BACKENDS,
    SERVER_FOLDER_KINDS,
    create_table,
    database_url,
    guarded_project,
    kinds_and,
    progress_lines,
    run_python,
    scalars,
    state,
    version_table,
    write_revision,
)
from tests.workflow_helpers import GAVE_UP_AFTER_1_S, add_to_env_py, assert_clean_failure

RUNS = 8
REVISIONS = 10
#: The revision that takes its time, so that the other runs are still waiting for the lock.
SLOW_REVISION = 5
WAITING = "Waiting for another migration"

# Holds each run at the starting line until the test creates the file "go" (env.py is run
# after the application is loaded, just before the runtime takes the lock).
STARTING_LINE = '''
import os as _os
import time as _time

if _os.environ.get("STARTING_LINE"):
    _line = _os.environ["STARTING_LINE"]
    open(_os.path.join(_line, "ready-%d" % _os.getpid()), "w").close()
    while not _os.path.exists(_os.path.join(_line, "go")):
        _time.sleep(0.02)
'''


def logged_revisions(project: Project) -> None:
    """r01..r10: each creates a table and records its run in the table ``runs`` and in the
    file $RUN_LOG (``<revision> <pid>`` per line).  r05 first sleeps for a second in an
    ``autocommit_block()``: outside any transaction, so that only the migration lock keeps
    the other runs out meanwhile (SQLite's write lock ends with the transaction)."""
    for number in range(1, REVISIONS + 1):
        revision = f"r{number:02d}"
        body = []
        if number == 1:
            body.append("""
                op.create_table("runs", sa.Column("revision", sa.String(8)),
                                sa.Column("pid", sa.Integer))
            """)
        body += [
            create_table(f"t{number:02d}"),
            f"""
            op.execute("INSERT INTO runs (revision, pid) VALUES ('{revision}', %d)" % os.getpid())
            with open(os.environ["RUN_LOG"], "a") as log:
                log.write("{revision} %d\\n" % os.getpid())
            """,
        ]
        if number == SLOW_REVISION:
            body.insert(0, """
                with op.get_context().autocommit_block():
                    time.sleep(1)
            """)
        previous = f"r{number - 1:02d}" if number > 1 else None
        write_revision(project, revision, previous, body)


@pytest.mark.parametrize("folder_kind, backend", kinds_and(BACKENDS))
def test_concurrent_upgrades_serialize(
    make_project, any_migrations_folder, request, backend, tmp_path
):
    line = tmp_path / "starting-line"
    line.mkdir()
    run_log = tmp_path / "runs.log"
    project = guarded_project(
        make_project, any_migrations_folder, database_url(backend, request),
        STARTING_LINE=str(line), RUN_LOG=str(run_log),
    )
    logged_revisions(project)
    add_to_env_py(project, STARTING_LINE)
    url = project.url

    fronts = ["flask", "script"] * (RUNS // 2)
    with ThreadPoolExecutor(RUNS) as pool:
        futures = [pool.submit(project.run, front, "upgrade", timeout=180) for front in fronts]
        deadline = time.monotonic() + 120
        try:
            while len(list(line.glob("ready-*"))) < RUNS:
                finished = [future.result() for future in futures if future.done()]
                assert not finished, "a run ended before the start:\n" + str(finished[0])
                assert time.monotonic() < deadline, "the runs did not all reach the start"
                time.sleep(0.05)
        finally:
            # Also when the start failed: the runs already there would wait until they time out.
            (line / "go").touch()
        results = [future.result() for future in futures]

    report = "\n".join(str(result) for result in results)
    assert all(result.returncode == 0 for result in results), report
    expected = [f"r{number:02d}" for number in range(1, REVISIONS + 1)]
    # Each revision ran once, all of them in the same run.
    logged = [entry.split() for entry in run_log.read_text().splitlines()]
    assert sorted(revision for revision, _ in logged) == expected, report
    assert len({pid for _, pid in logged}) == 1, report
    rows = scalars(url, "SELECT revision FROM runs")
    assert sorted(rows) == expected, report
    assert state(url) == ({"runs"} | {f"t{n:02d}" for n in range(1, REVISIONS + 1)}, {"r10"})
    # One run applied everything; the others waited for it, then found nothing to do.
    applied = Counter(bool(progress_lines(result, "Applied")) for result in results)
    assert applied == {True: 1, False: RUNS - 1}, report
    assert any(WAITING in result.stderr for result in results), report
    if backend == "sqlite":
        lock_file = locks.sqlite_lock_path(sa.engine.make_url(url))
        assert lock_file and not Path(lock_file).exists(), "the last run removes its lock file"


@contextlib.contextmanager
def holding_the_lock(
    holder: str, url: str, table: str = "alembic_version"
) -> Iterator[None]:
    """Hold what a migration run of the database at ``url`` needs, as ``holder`` would.

    ``sqlite``, ``postgresql``, ``mariadb``: another migration run, holding the migration lock;
    ``sqlite-writer``: another client of the SQLite file, in a write transaction.
    """
    if holder == "sqlite":
        path = locks.sqlite_lock_path(sa.engine.make_url(url))
        assert path is not None
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
            os.unlink(path)  # as a run does before it lets go
        finally:
            os.close(descriptor)
        return
    if holder == "sqlite-writer":
        connection = sqlite3.connect(sa.engine.make_url(url).database, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    name = locks.lock_name(table, None, sa.engine.make_url(url).database)
    if holder == "postgresql":
        take = sa.text("SELECT pg_try_advisory_lock(:key)").bindparams(
            key=locks._advisory_key(name))
    else:
        take = sa.text("SELECT GET_LOCK(:name, 0)").bindparams(name=name)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            assert connection.execute(take).scalar() in (True, 1)
            yield
    finally:
        # Closing the session releases its session-level lock.
        engine.dispose()


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
@pytest.mark.parametrize("holder", ["sqlite", "sqlite-writer", "postgresql", "mariadb"])
def test_waiting_for_the_lock_is_bounded(
    make_project, any_migrations_folder, folder_kind, request, holder
):
    backend = holder.split("-")[0]
    project = guarded_project(make_project, any_migrations_folder, database_url(backend, request))
    for number in (1, 2):
        previous = f"r{number - 1}" if number > 1 else None
        write_revision(project, f"r{number}", previous, create_table(f"t{number}"))
    url = project.url
    result = project.run("flask", "upgrade", "r1")
    assert result.returncode == 0, str(result)

    one_second = {"FLASK_MIGRATE_LOCK_TIMEOUT": "1"}
    with holding_the_lock(holder, url, version_table(folder_kind)):
        result = project.run("script", "upgrade", env=one_second)
        assert_clean_failure(result, 1, "FLASK_MIGRATE_LOCK_TIMEOUT", GAVE_UP_AFTER_1_S)
        assert state(url) == ({"t1"}, {"r1"}), str(result)
        # A command that only reads takes no lock.
        current = project.run("flask", "current", env=one_second)
        assert current.returncode == 0 and "r1" in current.stdout, str(current)

    result = project.run("flask", "upgrade", env=one_second)
    assert result.returncode == 0, str(result)
    assert WAITING not in result.stderr, str(result)
    assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
def test_invalid_lock_timeout_is_an_error(make_project, any_migrations_folder):
    project = guarded_project(make_project, any_migrations_folder, None)
    write_revision(project, "r1", None, create_table("t1"))
    for front, value in (("flask", "abc"), ("script", "-5")):
        result = project.run(front, "upgrade", env={"FLASK_MIGRATE_LOCK_TIMEOUT": value})
        assert_clean_failure(result, 1, "FLASK_MIGRATE_LOCK_TIMEOUT", value)
        assert state(project.url) == (set(), set()), str(result)
        options = json.dumps({"lock_timeout": value})
        result = project.run(front, "upgrade", env={"MIGRATE_OPTIONS": options})
        assert_clean_failure(result, 1, "lock_timeout", "Migrate(app, db, lock_timeout=")
        assert state(project.url) == (set(), set()), str(result)
    # Commands that take no lock do not read the value, so a bad one does not stop them.
    for args in (("current",), ("upgrade", "--sql")):
        result = project.run("flask", *args, env={"FLASK_MIGRATE_LOCK_TIMEOUT": "abc"})
        assert result.returncode == 0, str(result)


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
def test_lock_timeout_from_the_application(make_project, any_migrations_folder):
    """Migrate(app, db, lock_timeout=...) sets the wait, and is not passed on to Alembic."""
    project = guarded_project(
        make_project, any_migrations_folder, None, MIGRATE_OPTIONS='{"lock_timeout": 1}'
    )
    write_revision(project, "r1", None, create_table("t1"))
    with holding_the_lock("sqlite-writer", project.url):
        result = project.run("flask", "upgrade")
        assert_clean_failure(result, 1, GAVE_UP_AFTER_1_S)
    result = project.run("flask", "upgrade")
    assert result.returncode == 0, str(result)
    assert state(project.url) == ({"t1"}, {"r1"}), str(result)


THREADS_SCRIPT = """
import json
import threading

import flask_migrate
from app import app

errors = []


def upgrade():
    try:
        with app.app_context():
            flask_migrate.upgrade()
    except Exception as error:
        errors.append(repr(error))


threads = [threading.Thread(target=upgrade) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps(errors))
"""


@pytest.mark.parametrize("folder_kind", ["stock", "fm4"])
def test_upgrades_in_threads_of_one_process_take_turns(make_project, any_migrations_folder):
    """Alembic's context is one object per process: commands run in threads of one process
    take turns, each revision once, and no lock is left behind."""
    project = guarded_project(make_project, any_migrations_folder, None)
    for number in (1, 2, 3):
        previous = f"r{number - 1}" if number > 1 else None
        write_revision(project, f"r{number}", previous, create_table(f"t{number}"))
    script = project.path / "threads.py"
    script.write_text(THREADS_SCRIPT, encoding="utf-8")
    result = run_python(project, script)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [], str(result)
    assert state(project.url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)
    lock_file = locks.sqlite_lock_path(sa.engine.make_url(project.url))
    assert lock_file and not Path(lock_file).exists(), str(result)
    result = project.run("flask", "upgrade", env={"FLASK_MIGRATE_LOCK_TIMEOUT": "2"})
    assert result.returncode == 0 and WAITING not in result.stderr, str(result)
