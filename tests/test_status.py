"""What a deploy pipeline asks before and while it migrates: ``status``, ``--plan``, ``--bind``.

- ``db status`` reports every database's current revision, heads and pending revisions in apply
  order, with exit status 0 (up to date) or 3 (pending);
- ``upgrade --plan`` / ``downgrade --plan`` print the steps and change nothing;
- ``--bind NAME`` acts on some databases of a multi-database folder only.

Each runs through both front-ends; the multi-database cases use ``tests/apps/multidb`` (default
database ``setting``, binds ``users`` and ``logs``).
"""
from __future__ import annotations

import pytest

import flask_migrate
from tests.conftest import Project, tables, versions

URLS = ("DATABASE_URL", "USERS_URL", "LOGS_URL")


def three_revisions(project: Project) -> list[str]:
    """init, then three empty-bodied linear revisions r1..r3 with messages 'step one'..."""
    project.ok("init")
    ids = []
    for number, word in enumerate(("one", "two", "three"), start=1):
        project.ok("revision", "-m", f"step {word}", "--rev-id", f"r{number}")
        ids.append(f"r{number}")
    return ids


def schema_of(project: Project) -> tuple[set[str], set[str]]:
    return tables(project.url), versions(project.url)


def test_status_reports_pending_revisions_in_apply_order(project, front):
    three_revisions(project)
    project.ok("upgrade", "r1")

    result = project.db("status")

    assert result.returncode == 3, str(result)
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Database default (sqlite:///"), result.stdout
    assert "  current: r1" in lines
    assert "  heads:   r3" in lines
    assert "  status:  2 revisions to apply, in order:" in lines
    # Apply order, each with its message.
    assert lines[-2:] == ["    + r2  step two", "    + r3  step three"]
    assert "Error" not in result.stderr


def test_status_is_zero_when_up_to_date_and_creates_nothing(project, front):
    three_revisions(project)
    fresh = project.db("status")
    # A database that was never migrated: everything pending, and status leaves it untouched.
    assert fresh.returncode == 3, str(fresh)
    assert "  current: base (empty)" in fresh.stdout.splitlines()
    assert "alembic_version" not in tables(project.url)

    project.ok("upgrade")
    result = project.db("status")

    assert result.returncode == 0, str(result)
    assert "  status:  up to date" in result.stdout.splitlines()


def test_status_through_the_api_returns_the_report(project):
    project.front = "flask"
    three_revisions(project)
    project.ok("upgrade", "r2")
    (project.path / "probe.py").write_text(
        "from app import app\n"
        "import flask_migrate\n"
        "with app.app_context():\n"
        "    report = flask_migrate.status()\n"
        "state = report[0]\n"
        "print('RESULT', report.exit_code, state.name, state.current, state.heads,\n"
        "      [(step.revision, step.message) for step in state.steps])\n"
    )
    completed = project.python("probe.py")
    assert completed.returncode == 0, str(completed)
    line = next(x for x in completed.stdout.splitlines() if x.startswith("RESULT"))
    assert line == "RESULT 3 default ('r2',) ('r3',) [('r3', 'step three')]"


def test_upgrade_plan_prints_the_steps_and_runs_none(project, front):
    three_revisions(project)
    project.ok("upgrade", "r1")
    before = schema_of(project)

    result = project.db("upgrade", "--plan")

    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines() == [
        "Database default: 2 revisions to apply, in order, from r1:",
        "    + r2  step two",
        "    + r3  step three",
    ]
    assert schema_of(project) == before
    assert "Applied" not in result.stderr


def test_upgrade_plan_to_a_target_and_at_head(project, front):
    three_revisions(project)
    partial = project.db("upgrade", "r2", "--plan")
    assert partial.stdout.splitlines()[1:] == ["    + r1  step one", "    + r2  step two"]
    project.ok("upgrade")
    at_head = project.db("upgrade", "--plan")
    assert at_head.returncode == 0
    assert at_head.stdout.strip() == "Database default: nothing to apply (at r3)"


def test_downgrade_plan_lists_reverts_newest_first(project, front):
    three_revisions(project)
    project.ok("upgrade")
    before = schema_of(project)

    one_step = project.db("downgrade", "--plan")
    to_base = project.db("downgrade", "base", "--plan")

    assert one_step.stdout.splitlines() == [
        "Database default: 1 revision to revert, in order, from r3:",
        "    - r3  step three",
    ]
    assert to_base.stdout.splitlines()[1:] == [
        "    - r3  step three", "    - r2  step two", "    - r1  step one",
    ]
    assert schema_of(project) == before


def test_plan_with_sql_is_a_usage_error(project, front):
    three_revisions(project)
    result = project.db("upgrade", "--plan", "--sql")
    assert result.returncode == 2, str(result)
    assert result.stderr.strip().splitlines()[-1].startswith("Error: --plan and --sql")
    assert not (project.path / "app.db").exists() or "alembic_version" not in tables(project.url)


@pytest.fixture
def multidb(make_project, front) -> Project:
    project = make_project("multidb")
    project.ok("init", "--multidb")
    project.ok("migrate", "-m", "initial")
    return project


def multidb_versions(project: Project) -> dict[str, set[str]]:
    return {name: versions(project.env[name]) for name in URLS}


def test_upgrade_one_bind_leaves_the_others_alone(multidb):
    (revision,) = {path.name.split("_")[0] for path in multidb.revision_files()}

    result = multidb.db("upgrade", "--bind", "users")

    assert result.returncode == 0, str(result)
    assert multidb_versions(multidb) == {
        "DATABASE_URL": set(), "USERS_URL": {revision}, "LOGS_URL": set(),
    }
    assert "account" in tables(multidb.env["USERS_URL"])
    assert "the users database" in result.stderr


def test_status_per_database_and_selected(multidb):
    multidb.ok("upgrade", "--bind", "default", "--bind", "logs")

    everything = multidb.db("status")
    users_only = multidb.db("status", "--bind", "users")
    done_only = multidb.db("status", "--bind", "logs")

    assert everything.returncode == 3, str(everything)
    headers = [line for line in everything.stdout.splitlines() if line.startswith("Database")]
    assert [header.split()[1] for header in headers] == ["default", "users", "logs"]
    assert users_only.returncode == 3
    assert [line for line in users_only.stdout.splitlines() if line.startswith("Database")] \
        == [headers[1]]
    assert done_only.returncode == 0, str(done_only)
    assert "  status:  up to date" in done_only.stdout.splitlines()


def test_downgrade_and_stamp_of_one_bind(multidb):
    multidb.ok("upgrade")
    (revision,) = versions(multidb.env["LOGS_URL"])

    multidb.ok("downgrade", "--bind", "logs", "base")
    assert multidb_versions(multidb) == {
        "DATABASE_URL": {revision}, "USERS_URL": {revision}, "LOGS_URL": set(),
    }
    assert "event" not in tables(multidb.env["LOGS_URL"])

    multidb.ok("stamp", "--bind", "logs", "head")
    assert versions(multidb.env["LOGS_URL"]) == {revision}
    # Stamped only: the table is still missing, which status cannot see but current shows.
    current = multidb.db("current", "--bind", "logs")
    assert current.returncode == 0
    assert current.stdout.split() == [revision, "(head)"]


def test_unknown_bind_is_an_error_that_changes_nothing(multidb):
    before = multidb_versions(multidb)

    result = multidb.db("upgrade", "--bind", "users", "--bind", "nosuch")

    assert result.returncode == 1, str(result)
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: no database named 'nosuch'")
    assert "default, users, logs" in error
    assert "Traceback" not in result.stderr
    assert multidb_versions(multidb) == before


def test_bind_on_a_single_database_folder_names_the_default(project, front):
    three_revisions(project)
    assert project.db("upgrade", "--bind", "default").returncode == 0
    assert versions(project.url) == {"r3"}
    wrong = project.db("status", "--bind", "users")
    assert wrong.returncode == 1
    assert "its databases are: default" in wrong.stderr


def test_bind_is_refused_for_an_env_py_that_would_ignore_it(project, front):
    three_revisions(project)
    env_py = project.migrations / "env.py"
    # An env.py of the old, self-contained kind: it never reads our options.
    env_py.write_text(
        "from alembic import context\n"
        "from flask import current_app\n"
        "db = current_app.extensions['migrate'].db\n"
        "with db.engine.connect() as connection:\n"
        "    context.configure(connection=connection, target_metadata=db.metadata)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n"
    )
    result = project.db("upgrade", "--bind", "default")
    assert result.returncode == 2, str(result)
    assert "--bind needs an env.py that calls flask_migrate.runtime" in result.stderr
    assert versions(project.url) == set()


def test_status_and_plan_are_in_the_command_table():
    from flask_migrate.spec import command_specs

    specs = {spec.name: spec for spec in command_specs()}
    assert specs["status"].function is flask_migrate.status
    assert {option.name for option in specs["status"].options} == {"directory", "bind"}
    for name in ("upgrade", "downgrade"):
        assert specs[name].accepts("plan") and specs[name].accepts("bind")
    for name in ("stamp", "current"):
        assert specs[name].accepts("bind")


def test_option_values_that_start_with_a_dash(project, front):
    """``-r -2:`` and ``-m "-x"`` mean the same on both front-ends (argparse would refuse)."""
    three_revisions(project)
    result = project.db("history", "-r", "-1:")
    assert result.returncode == 0, str(result)
    assert result.stdout.splitlines() == ["r2 -> r3 (head), step three", "r1 -> r2, step two"]
    project.ok("revision", "-m", "-starts with a dash", "--rev-id", "r4")
    assert "-starts with a dash" in project.db("show", "r4").stdout
