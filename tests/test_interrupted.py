"""A revision that did not finish, and left part of itself behind, is known as such.

MariaDB commits every DDL statement on its own, and an ``autocommit_block()`` commits what came
before it, so a run killed (SIGKILL: no handler runs) inside such a revision leaves some of it
in the database while the version table names the revision before.  The run recorded the
revision in progress (:mod:`flask_migrate.runtime.marks`); the next run must name it and the way
out instead of re-running it, ``status`` must show it, the lock must be free, and once the user
has said where the database stands (``stamp``) the upgrade must complete.

Each scenario kills a real ``db upgrade`` process while a revision sleeps, after its first
statement (a marker file says when), on a real server.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project, Result, tables
from tests.guarantee_helpers import (
    create_table,
    error_line,
    execute,
    guarded_project,
    interrupted,
    pause_when,
    state,
    write_revision,
)
from tests.processes import Run

SLEEP = pause_when("SLOW")


def paused_project(make_project, migrations_folder, url: str, marker: Path) -> Project:
    """A guarded project on ``url`` whose :data:`SLEEP` creates ``marker``; the run after the
    kill waits a few seconds for the lock (there must be none left to wait for)."""
    return guarded_project(
        make_project, migrations_folder, url, MARKER=str(marker), FLASK_MIGRATE_LOCK_TIMEOUT="5"
    )


def killed_in_the_middle(project: Project, front: str, marker: Path) -> Result:
    """Start ``db upgrade`` with SLOW set, SIGKILL it once the slow revision has started."""
    run = Run(project, front, "upgrade", env={"SLOW": "1"})
    try:
        run.wait_for(marker.exists, "the slow revision to start")
        run.kill()
        return run.result()
    finally:
        run.stop()


def assert_refused(result: Result, revision: str, current: str) -> None:
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.stderr, str(result)
    line = error_line(result)
    assert f"revision {revision} (revision {revision}) did not finish in an earlier run" in line
    assert f"recorded at {current}" in line, str(result)
    assert f"'db stamp {current}'" in line and f"'db stamp {revision}'" in line, str(result)
    assert "waiting" not in result.stderr.lower(), str(result)  # no lock was left behind


@pytest.mark.parametrize("front", ["flask", "script"])
def test_mariadb_revision_killed_after_its_first_ddl(
    make_project, migrations_folder, mariadb_url, tmp_path, front
):
    marker = tmp_path / "r2-started"
    project = paused_project(make_project, migrations_folder, mariadb_url, marker)
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", [create_table("t2"), SLEEP, create_table("t2b")])
    write_revision(project, "r3", "r2", create_table("t3"))
    url = mariadb_url

    result = killed_in_the_middle(project, front, marker)
    assert result.returncode == -9, str(result)
    # r1 is recorded; r2's first table is there (MariaDB committed it), r2 is unfinished.
    assert state(url) == ({"t1", "t2"}, {"r1"}), str(result)
    assert interrupted(url) == [("r2", "upgrade")], str(result)

    other = "script" if front == "flask" else "flask"
    for command_front in (front, other):
        result = project.run(command_front, "upgrade")
        assert_refused(result, "r2", "r1")
        assert state(url) == ({"t1", "t2"}, {"r1"}), str(result)

        result = project.run(command_front, "status")
        assert result.returncode == 3, str(result)
        assert "  interrupted: r2 did not finish (upgrade started " in result.stdout, str(result)
        assert "'db upgrade' says how to recover" in result.stdout, str(result)

    # The user completes r2 by hand and says so; the rest of the history then applies.
    execute(url, 'CREATE TABLE t2b (id INTEGER PRIMARY KEY, n INTEGER)')
    result = project.run(other, "stamp", "r2")
    assert result.returncode == 0, str(result)
    assert interrupted(url) == [], str(result)
    result = project.run(front, "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2", "t2b", "t3"}, {"r3"}), str(result)
    assert "alembic_version_in_progress" not in tables(url), str(result)


def test_mariadb_revision_killed_before_any_ddl_is_simply_run_again(
    make_project, migrations_folder, mariadb_url, tmp_path
):
    """Nothing of the revision was committed: no record survives, the next run completes."""
    marker = tmp_path / "r2-started"
    project = paused_project(make_project, migrations_folder, mariadb_url, marker)
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", [SLEEP, create_table("t2")])
    url = mariadb_url

    result = killed_in_the_middle(project, "flask", marker)
    assert state(url) == ({"t1"}, {"r1"}), str(result)
    assert interrupted(url) == [], str(result)

    result = project.run("script", "upgrade")
    assert result.returncode == 0, str(result)
    assert "Waiting" not in result.stderr, str(result)
    assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)
    assert "alembic_version_in_progress" not in tables(url), str(result)


def test_postgresql_autocommit_block_killed_half_way(
    make_project, migrations_folder, postgresql_url, tmp_path
):
    """The block committed the revision's first table; the kill lands inside the block."""
    marker = tmp_path / "r2-started"
    project = paused_project(make_project, migrations_folder, postgresql_url, marker)
    write_revision(project, "r1", None, create_table("t1"))
    write_revision(project, "r2", "r1", [create_table("t2"), """
        with op.get_context().autocommit_block():
            op.execute("CREATE INDEX CONCURRENTLY ix_t1_n ON t1 (n)")
    """, SLEEP])
    url = postgresql_url

    result = killed_in_the_middle(project, "script", marker)
    assert state(url) == ({"t1", "t2"}, {"r1"}), str(result)
    assert interrupted(url) == [("r2", "upgrade")], str(result)

    result = project.run("flask", "upgrade")
    assert_refused(result, "r2", "r1")
    result = project.run("script", "status")
    assert "  interrupted: r2 did not finish" in result.stdout, str(result)

    # An unknown target changes nothing: the record stays.
    result = project.run("flask", "stamp", "nosuchrev")
    assert result.returncode == 1, str(result)
    assert interrupted(url) == [("r2", "upgrade")], str(result)

    # Undone by hand, stamped where the version table is, upgraded.
    execute(url, "DROP INDEX ix_t1_n", "DROP TABLE t2")
    result = project.run("flask", "stamp", "r1")
    assert result.returncode == 0, str(result)
    result = project.run("script", "upgrade")
    assert result.returncode == 0, str(result)
    assert state(url) == ({"t1", "t2"}, {"r2"}), str(result)
    assert interrupted(url) == [], str(result)


def recorded_by_hand(make_project, front: str) -> tuple[Project, str]:
    """A SQLite project at its one revision, with the record a downgrade of that revision on
    another machine left behind."""
    project = make_project("single")
    for args in (("init",), ("migrate", "-m", "users"), ("upgrade",)):
        result = project.run(front, *args)
        assert result.returncode == 0, str(result)
    revision = project.revision_files()[0].name.split("_")[0]
    execute(
        project.url,
        "CREATE TABLE alembic_version_in_progress (revision VARCHAR(255) NOT NULL, "
        "direction VARCHAR(16) NOT NULL, started VARCHAR(32) NOT NULL, "
        "started_by VARCHAR(255) NOT NULL)",
        f"INSERT INTO alembic_version_in_progress VALUES ('{revision}', 'downgrade', "
        "'2026-12-01 10:00:00 UTC', 'web-1 pid 7')",
    )
    return project, revision


@pytest.mark.parametrize("front", ["flask", "script"])
def test_the_record_is_not_part_of_the_schema(make_project, front):
    """Autogenerate never proposes to drop the record's table, and status reads it (SQLite)."""
    project, revision = recorded_by_hand(make_project, front)
    result = project.run(front, "check")
    assert result.returncode == 0, str(result)

    result = project.run(front, "status")
    assert result.returncode == 3, str(result)
    assert (f"  interrupted: {revision} did not finish (downgrade started 2026-12-01 10:00:00 "
            "UTC by web-1 pid 7)") in result.stdout, str(result)
    assert "  status:  not up to date: a revision did not finish" in result.stdout

    result = project.run(front, "downgrade")
    assert result.returncode == 1, str(result)
    line = error_line(result)
    assert "did not finish in an earlier run (downgrade started" in line, str(result)
    assert f"'db stamp {revision}'" in line, str(result)
    assert interrupted(project.url) == [(revision, "downgrade")]


@pytest.mark.parametrize("front", ["flask", "script"])
def test_a_stamp_that_fails_keeps_the_record(make_project, front):
    """The record is cleared in the stamp's own transaction, once the version table says where
    the database stands: a stamp that fails there (here a trigger refuses it) leaves both as
    they were; one that succeeds clears it (SQLite)."""
    project, revision = recorded_by_hand(make_project, front)
    execute(
        project.url,
        "CREATE TRIGGER refuse BEFORE DELETE ON alembic_version "
        "BEGIN SELECT RAISE(ABORT, 'the version table is read-only today'); END",
    )
    result = project.run(front, "stamp", "base")
    assert result.returncode == 1, str(result)
    assert "read-only today" in error_line(result), str(result)
    assert interrupted(project.url) == [(revision, "downgrade")], str(result)
    assert state(project.url)[1] == {revision}

    execute(project.url, "DROP TRIGGER refuse")
    assert project.run(front, "stamp", "base").returncode == 0
    assert interrupted(project.url) == []
    assert state(project.url)[1] == set()
