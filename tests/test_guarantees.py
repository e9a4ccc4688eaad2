"""Atomic runs, ``autocommit_block()``, the application's engine, progress output, and thousands
of revisions: the runtime guarantees of SPEC section 5 that do not need several processes
(those are in ``tests/test_concurrency.py``).

Every scenario writes its own revision files (:mod:`tests.guarantee_helpers`) into a copy of
``tests/apps/guarded`` and runs the real command lines, then reads the database back.  A
revision made to fail runs invalid SQL after its own DDL, so a failure that is not rolled back
leaves a table behind, where the assertions look for it.

Where a failed run ends, as implemented in :mod:`flask_migrate.runtime.transactions`:

- SQLite: the whole run is one transaction, so the database is back where the run started;
  with ``transaction_per_migration=True``, at the last revision that completed;
- PostgreSQL: one transaction per revision by default, so at the last revision that completed;
  with ``transaction_per_migration=False``, back where the run started;
- MariaDB: every DDL statement commits itself.  Only the bookkeeping holds: ``alembic_version``
  names the last revision that completed, and the DDL the failing revision ran stays.
"""
from __future__ import annotations

import json
import os
import re
import signal
import textwrap
from pathlib import Path

import pytest

from tests.conftest import Project, Result, tables, versions
from tests.guarantee_helpers import (
    create_table,
    database_url,
    error_line,
    execute,
    fail_when,
    interrupted,
    SERVER_FOLDER_KINDS,
    guarded_project,
    kinds_and,
    kinds_with_fronts,
    pause_when,
    progress_lines,
    run_python,
    scalars,
    state,
    write_revision,
)

#: The variable that makes a revision fail (see :func:`three_tables`).
FAIL = "FAIL_IN"


def three_tables(project: Project) -> None:
    """r1..r3 create t1..t3.  With FAIL_IN=upgrade, r3's upgrade fails after creating t3; with
    FAIL_IN=downgrade, r2's downgrade fails after dropping t2."""
    write_revision(project, "r1", None, create_table("t1"), 'op.drop_table("t1")')
    write_revision(
        project, "r2", "r1", create_table("t2"),
        ['op.drop_table("t2")', fail_when(FAIL, "downgrade")],
    )
    write_revision(
        project, "r3", "r2", [create_table("t3"), fail_when(FAIL, "upgrade")],
        'op.drop_table("t3")',
    )


def assert_failed_in(result: Result, revision: str) -> None:
    """Exit status 1 and one ``Error:`` line naming the revision and its file."""
    assert result.returncode == 1, str(result)
    line = error_line(result)
    assert f"revision {revision}" in line and f"{revision}_.py" in line, str(result)


# -- Atomic upgrades and downgrades ------------------------------------------------------------

BOUNDARY_CASES = [
    # backend, Migrate(...) options, front-end, where a failed run leaves the database, id
    ("sqlite", {}, "flask", "start", "sqlite"),
    ("sqlite", {"transaction_per_migration": True}, "script", "last-good-revision",
     "sqlite-transaction_per_migration"),
    ("postgresql", {}, "script", "last-good-revision", "postgresql"),
    ("postgresql", {"transaction_per_migration": False}, "flask", "start",
     "postgresql-one-transaction"),
]


@pytest.mark.parametrize(
    "folder_kind, backend, options, front_end, ends_at, case",
    kinds_and(BOUNDARY_CASES, lambda case: case[0]),
)
def test_failed_run_ends_at_a_revision_boundary(
    make_project, any_migrations_folder, request, backend, options, front_end, ends_at, case
):
    project = guarded_project(
        make_project, any_migrations_folder, database_url(backend, request),
        MIGRATE_OPTIONS=json.dumps(options),
    )
    three_tables(project)
    url = project.url

    result = project.run(front_end, "upgrade", "r1")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1"}, {"r1"}), str(result)

    # r2 completes, r3 creates t3 and fails.
    result = project.run(front_end, "upgrade", env={FAIL: "upgrade"})
    assert_failed_in(result, "r3")
    assert "Applied r2" in result.stderr, str(result)
    if ends_at == "start":
        assert state(url) == ({"t1"}, {"r1"}), str(result)
    else:
        assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)

    result = project.run(front_end, "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)

    # Down to base: r3 is reverted, then r2 drops t2 and fails.
    result = project.run(front_end, "downgrade", "base", env={FAIL: "downgrade"})
    assert_failed_in(result, "r2")
    assert "Reverted r3" in result.stderr, str(result)
    if ends_at == "start":
        assert state(url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)
    else:
        assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
def test_mariadb_keeps_the_ddl_of_a_failed_revision(
    make_project, any_migrations_folder, mariadb_url
):
    """MariaDB commits each DDL statement on its own, so no transaction can undo one; what
    holds is the bookkeeping: alembic_version names the last revision that completed, the
    revision that failed is recorded as unfinished, and the next run says how to recover
    instead of tripping over the table the revision left behind."""
    project = guarded_project(make_project, any_migrations_folder, mariadb_url)
    three_tables(project)
    url = mariadb_url

    result = project.run("flask", "upgrade", "r1")
    assert result.returncode == 0, str(result)
    assert interrupted(url) == [], str(result)

    result = project.run("script", "upgrade", env={FAIL: "upgrade"})
    assert_failed_in(result, "r3")
    assert "with what r3 did before it failed" in error_line(result), str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r2"}), str(result)
    assert interrupted(url) == [("r3", "upgrade")], str(result)

    # Running it again does not re-run r3 (whose table is there): it names the unfinished
    # revision and the way out.
    result = project.run("flask", "upgrade")
    assert result.returncode == 1, str(result)
    line = error_line(result)
    assert "revision r3 (revision r3) did not finish in an earlier run" in line, str(result)
    assert "'db stamp r2'" in line and "'db stamp r3'" in line, str(result)
    assert "already exists" not in line and "fix the script" not in line, str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r2"}), str(result)

    # The user undoes what r3 did and says so; the upgrade then completes, leaving no record.
    execute(url, "DROP TABLE t3")
    result = project.run("script", "stamp", "r2")
    assert result.returncode == 0, str(result)
    assert interrupted(url) == [], str(result)
    result = project.run("script", "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)
    assert "alembic_version_in_progress" not in tables(url), str(result)

    # r3 is reverted (its table and its version row); r2 drops t2, then fails.
    result = project.run("flask", "downgrade", "base", env={FAIL: "downgrade"})
    assert_failed_in(result, "r2")
    assert state(url) == ({"t1"}, {"r2"}), str(result)
    assert interrupted(url) == [("r2", "downgrade")], str(result)


def test_autocommit_block_on_sqlite(make_project, any_migrations_folder):
    project = guarded_project(make_project, any_migrations_folder, None)
    write_revision(project, "r1", None, create_table("t1"))
    # VACUUM refuses to run inside a transaction.  It also applies the auto_vacuum mode set
    # just before it, which shows afterwards that it did run.
    write_revision(project, "r2", "r1", ["""
        with op.get_context().autocommit_block():
            op.execute("PRAGMA auto_vacuum = FULL")
            op.execute("VACUUM")
    """, create_table("t2")])
    write_revision(project, "r3", "r2", [create_table("t3"), fail_when(FAIL, "upgrade")])
    url = project.url
    assert scalars(url, "PRAGMA auto_vacuum") == [0]

    result = project.run("flask", "upgrade", env={FAIL: "upgrade"})
    assert_failed_in(result, "r3")
    assert scalars(url, "PRAGMA auto_vacuum") == [1], str(result)
    # The block committed the run so far (r1).  After it the run is one transaction again:
    # r2's table and version went with the failure of r3, not what its block did: r2 is
    # recorded as unfinished.
    assert state(url) == ({"t1"}, {"r1"}), str(result)
    assert interrupted(url) == [("r2", "upgrade")], str(result)

    result = project.run("script", "upgrade")
    assert result.returncode == 1, str(result)
    assert "revision r2 (revision r2) did not finish" in error_line(result), str(result)
    # Its block can run again (the user's judgement): stamp where the version table is.
    result = project.run("script", "stamp", "r1")
    assert result.returncode == 0, str(result)
    result = project.run("script", "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)
    assert interrupted(url) == [], str(result)


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
def test_autocommit_block_on_postgresql(make_project, any_migrations_folder, postgresql_url):
    project = guarded_project(make_project, any_migrations_folder, postgresql_url)
    write_revision(project, "r1", None, create_table("t1"))
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction block.
    write_revision(project, "r2", "r1", [create_table("t2"), """
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_t1_n ON t1 (n)")
    """])
    write_revision(project, "r3", "r2", [create_table("t3"), fail_when(FAIL, "upgrade")])
    url = postgresql_url

    result = project.run("script", "upgrade", env={FAIL: "upgrade"})
    assert_failed_in(result, "r3")
    valid = "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_t1_n'::regclass"
    assert scalars(url, valid) == [True], str(result)
    assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)
    assert interrupted(url) == [], str(result)  # r2 finished, r3 was rolled back

    result = project.run("flask", "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2", "t3"}, {"r3"}), str(result)


# What the in-process test runs: the API, then the application's own session on the same pool.
IN_PROCESS_SCRIPT = '''
import json
import os

import sqlalchemy as sa

import flask_migrate
from app import Note, app, db

# Flask-SQLAlchemy 2 gives a SQLite file no pool at all (NullPool); with one, the connection
# the migrations used is the one the session gets next, as on Flask-SQLAlchemy 3.
app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"poolclass": sa.pool.QueuePool}


def driver_connection(connection):
    fairy = connection.connection
    return getattr(fairy, "dbapi_connection", None) or fairy.connection


def settings(raw):
    return [raw.isolation_level, raw.execute("PRAGMA busy_timeout").fetchone()[0]]


report = {}
with app.app_context():
    engine = db.engine
    report["pool"] = type(engine.pool).__name__
    with engine.connect() as connection:
        report["before"] = settings(driver_connection(connection))
    used = []
    sa.event.listen(engine, "checkout", lambda raw, record, proxy: used.append(raw))

    os.environ["FAIL_IN"] = "upgrade"
    try:
        flask_migrate.upgrade()
    except flask_migrate.MigrateError as error:
        report["error"] = str(error)
    del os.environ["FAIL_IN"]
    report["after_failure"] = [settings(raw) for raw in used]

    used.clear()
    flask_migrate.upgrade()
    report["after_success"] = [settings(raw) for raw in used]

    # The session's transactions are real: a rollback undoes what was flushed.
    db.session.add(Note(text="kept"))
    db.session.commit()
    db.session.add(Note(text="rolled back"))
    db.session.flush()
    db.session.rollback()
    report["notes"] = db.session.execute(sa.select(Note.text).order_by(Note.id)).scalars().all()
    session_raw = driver_connection(db.session.connection())
    report["session"] = settings(session_raw)
    report["session_reuses_it"] = any(session_raw is raw for raw in used)
    db.session.rollback()
print(json.dumps(report))
'''


#: The folders whose env.py migrates through the application's own engine (the others make an
#: engine of their own from the URL).
APP_ENGINE_KINDS = ["stock", "fm27", "fm3", "fm4", "fm4-custom"]


@pytest.mark.parametrize("folder_kind", APP_ENGINE_KINDS)
def test_application_engine_keeps_its_behaviour_in_process(make_project, any_migrations_folder):
    """flask_migrate.upgrade() in the application's process, failing then succeeding: the
    pooled SQLite connection it used goes back to the application as the driver made it."""
    project = guarded_project(make_project, any_migrations_folder, None)
    write_revision(project, "r1", None, """
        op.create_table("note", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("text", sa.String(100)))
    """)
    write_revision(project, "r2", "r1", [create_table("t2"), fail_when(FAIL, "upgrade")])
    script = project.path / "in_process.py"
    script.write_text(textwrap.dedent(IN_PROCESS_SCRIPT), encoding="utf-8")

    result = run_python(project, script)
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["pool"] == "QueuePool", report
    # The driver's default: it begins transactions itself (isolation_level "", not None).
    assert report["before"][0] == "", report
    assert "revision r2" in report["error"], report
    assert report["after_failure"] and report["after_success"], report
    for found in report["after_failure"] + report["after_success"] + [report["session"]]:
        assert found == report["before"], report
    assert report["session_reuses_it"], report
    assert report["notes"] == ["kept"], report
    assert versions(project.url) == {"r2"} and "note" in tables(project.url)


# -- Progress ----------------------------------------------------------------------------------

DURATION = r"\d+(\.\d+)? m?s"


def assert_lines(found: list[str], patterns: list[str], result: Result) -> None:
    assert len(found) == len(patterns), f"{found}\n{result}"
    for line, pattern in zip(found, patterns):
        assert re.fullmatch(pattern, line), f"{line!r} !~ {pattern!r}\n{result}"


@pytest.mark.parametrize("folder_kind, front", kinds_with_fronts())
def test_progress_lines(make_project, any_migrations_folder, front):
    project = guarded_project(make_project, any_migrations_folder, None)
    three_tables(project)

    result = project.ok("upgrade", "r1")
    assert_lines(progress_lines(result, "Applied", "Reverted", "Upgraded", "Downgraded"), [
        f"Applied r1 in {DURATION}",
        f"Upgraded the database from base to r1: 1 revision in {DURATION}",
    ], result)

    result = project.ok("upgrade")
    assert_lines(progress_lines(result, "Applied", "Reverted", "Upgraded", "Downgraded"), [
        f"Applied r2 in {DURATION}",
        f"Applied r3 in {DURATION}",
        f"Upgraded the database from r1 to r3: 2 revisions in {DURATION}",
    ], result)

    # Nothing to do: nothing to report.
    result = project.ok("upgrade")
    assert progress_lines(result, "Applied", "Upgraded") == [], str(result)

    result = project.ok("downgrade", "base")
    assert_lines(progress_lines(result, "Applied", "Reverted", "Upgraded", "Downgraded"), [
        f"Reverted r3 in {DURATION}",
        f"Reverted r2 in {DURATION}",
        f"Reverted r1 in {DURATION}",
        f"Downgraded the database from r3 to base: 3 revisions in {DURATION}",
    ], result)


def test_progress_names_each_database(make_project):
    project = make_project("multidb")
    assert project.run("script", "init", "--multidb").returncode == 0
    result = project.run("script", "migrate", "-m", "one", "--rev-id", "m1")
    assert result.returncode == 0, str(result)

    result = project.run("script", "upgrade")
    assert result.returncode == 0, str(result)
    # Once per database, each run announced by "Migrating database <name>".
    applied = progress_lines(result, "Applied")
    assert len(applied) == 3, str(result)
    assert all(re.fullmatch(f"Applied m1 in {DURATION}", line) for line in applied), str(result)
    for label in ("default", "users", "logs"):
        pattern = f"Upgraded the {label} database from base to m1: 1 revision in {DURATION}"
        assert any(
            re.fullmatch(pattern, line) for line in progress_lines(result, "Upgraded")
        ), f"{pattern}\n{result}"

    result = project.run("script", "downgrade")
    assert result.returncode == 0, str(result)
    for label in ("default", "users", "logs"):
        pattern = f"Downgraded the {label} database from m1 to base: 1 revision in {DURATION}"
        assert any(
            re.fullmatch(pattern, line) for line in progress_lines(result, "Downgraded")
        ), f"{pattern}\n{result}"


# -- Thousands of revisions on a stock PostgreSQL server ---------------------------------------

#: Enough new tables to run out of lock slots in one transaction on a stock server: with
#: max_locks_per_transaction = 64, this repository run as one transaction (Migrate(...,
#: transaction_per_migration=False)) fails at revision 3158 with "out of shared memory"
#: (measured on PostgreSQL 15; not repeated here, it would double the test's time).
MANY = 5000


def test_thousands_of_revisions_on_stock_postgresql(
    make_project, migrations_folder, postgresql_url
):
    url = postgresql_url
    # The premise: the lock table has its stock size (tests/servers.py keeps it so).
    stock = {"max_locks_per_transaction": "64", "max_connections": "100",
             "max_prepared_transactions": "0"}
    assert {name: scalars(url, f"SHOW {name}")[0] for name in stock} == stock

    project = guarded_project(make_project, migrations_folder, url)
    for number in range(1, MANY + 1):
        table = f"t{number:05d}"
        write_revision(
            project, f"m{number:05d}", f"m{number - 1:05d}" if number > 1 else None,
            [create_table(table), f'op.create_index("ix_{table}_n", "{table}", ["n"])'],
            f'op.drop_table("{table}")',
        )

    result = project.run("flask", "upgrade", timeout=900)
    assert result.returncode == 0, str(result)[-3000:]
    assert len(tables(url) - {"alembic_version"}) == MANY
    assert scalars(url, "SELECT count(*) FROM pg_indexes WHERE indexname LIKE 'ix_t%'") == [MANY]
    assert versions(url) == {f"m{MANY:05d}"}
    assert progress_lines(result, "Upgraded") and (
        f": {MANY} revisions in" in progress_lines(result, "Upgraded")[0]), str(result)[-3000:]


@pytest.mark.parametrize("folder_kind, front", kinds_with_fronts())
def test_ctrl_c_during_an_upgrade_rolls_back_and_says_so(
    make_project, any_migrations_folder, front
):
    """An interrupt (here raised by the revision itself) is one line, exit 130, nothing applied."""
    project = guarded_project(make_project, any_migrations_folder, None)
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", [
        # What Python raises on Ctrl-C (a real SIGINT is ignored when the suite runs in the
        # background, as scripts/test runs it).
        create_table("t2"), "raise KeyboardInterrupt",
    ])

    result = project.run(front, "upgrade")

    assert result.returncode == 130, str(result)
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr, str(result)
    assert error_line(result) == (
        "Error: interrupted; run 'db status' to see where each database is"
    )
    assert state(project.url) == (set(), set()), str(result)


@pytest.mark.parametrize("folder_kind", SERVER_FOLDER_KINDS)
@pytest.mark.parametrize("backend, front", [("sqlite", "flask"), ("postgresql", "script")])
def test_sigterm_during_an_upgrade_rolls_back_and_says_so(
    make_project, any_migrations_folder, request, runs, backend, front, tmp_path
):
    """A container being stopped: SIGTERM in the middle of a revision rolls it back, releases
    the lock, prints one line and exits 143; the next upgrade completes."""
    marker = tmp_path / "r2-started"
    project = guarded_project(
        make_project, any_migrations_folder, database_url(backend, request),
        MARKER=str(marker),
    )
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(
        project, "r2", "r1", [create_table("t2"), pause_when("SLOW", "time.sleep(60)")]
    )
    url = project.url
    run = runs(project, front, "upgrade", env={"SLOW": "1"})
    run.wait_for(marker.exists, "r2 to start")
    run.send_signal(signal.SIGTERM)
    result = run.result()
    assert result.returncode == 143, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert error_line(result).startswith("Error: terminated (SIGTERM)"), str(result)
    # SQLite: one transaction for the run; PostgreSQL: one per revision, r1 committed.
    expected = (set(), set()) if backend == "sqlite" else ({"t1"}, {"r1"})
    assert state(url) == expected, str(result)

    result = project.run(front, "upgrade", env={"FLASK_MIGRATE_LOCK_TIMEOUT": "5"})
    assert result.returncode == 0, str(result)
    assert "Waiting for another migration" not in result.stderr, str(result)
    assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)


@pytest.mark.parametrize("folder_kind", ["stock", "fm26", "fm4"])
def test_alembic_chatter_only_when_asked_for(make_project, any_migrations_folder, front):
    """Our progress and what autogenerate found are shown; Alembic's context lines only with
    FLASK_MIGRATE_VERBOSE=1, whether or not env.py calls fileConfig() (fm26, fm4 do)."""
    project = guarded_project(make_project, any_migrations_folder, None)
    write_revision(project, "r1", None, create_table("t1"))
    chatter = ("Context impl SQLiteImpl.", "Will assume transactional DDL.")

    result = project.ok("upgrade")
    assert not any(line in result.stderr for line in chatter), str(result)
    assert progress_lines(result, "Applied r1"), str(result)
    result = project.ok("migrate", "-m", "note")  # the model's table, and t1 to drop
    assert "Detected added table 'note'" in result.stderr, str(result)
    assert not any(line in result.stderr for line in chatter), str(result)

    result = project.ok("current", env={"FLASK_MIGRATE_VERBOSE": "1"})
    assert all(line in result.stderr for line in chatter), str(result)
