"""Migrations folders written by Flask-Migrate 2.x keep working (SPEC section 7).

The folders are in ``tests/legacy_repos/`` (see its ``build.py``): a full env.py of the 2.x kind
for one database and one for several (``fileConfig`` with logging sections in alembic.ini,
``db.engine`` / ``db.get_engine(app, bind)`` / ``str(engine.url)`` for the URLs, the models
from ``db.metadata``, filtered by ``info['bind_key']`` for the binds, ``configure_args``,
``cmd_opts.autogenerate`` to drop empty revisions), 2.x's script.py.mako, and the revision
files and database states the legacy stack produced from them.  Each test starts from those
states (the first of two revisions applied) and drives the real command lines.

On the modern stack (Flask-SQLAlchemy 3, SQLAlchemy 2) every command keeps working as on the
legacy stack, autogenerate included: the multi-database env.py that picks each bind's tables
from ``db.metadata`` by ``info['bind_key']`` is given them marked so (flask_migrate.compat).
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.conftest import STACK, Project, Result, columns, tables, versions
from tests.legacy_helpers import (
    DATABASES, MULTI, MULTI_TABLES, REPOS, SINGLE, legacy_project, snapshot, urls_of,
)
from tests.multidb_helpers import V2
from tests.workflow_helpers import error_lines


def make_branch_and_merge(project: Project, base: str, env: dict[str, str]) -> str:
    """A second head from ``base``, then a merge of both heads; returns the merge's id."""
    project.ok("revision", "-m", "side branch", "--head", base, "--splice",
               "--rev-id", "5eed00000001", env=env)
    project.ok("merge", "heads", "-m", "join the branches", "--rev-id", "5eed00000002", env=env)
    result = project.ok("heads", env=env)
    assert "5eed00000002 (head)" in result.stdout and result.stdout.count("(head)") == 1, (
        str(result)
    )
    # The new files come from the folder's own (2.x) script.py.mako.
    merge = project.migrations / "versions" / "5eed00000002_join_the_branches.py"
    text = merge.read_text(encoding="utf-8")
    assert "Identifiers Alembic uses" in text and "'5eed00000001'" in text, text
    return "5eed00000002"


# --- One database --------------------------------------------------------------------------------


def run_single_scenario(project: Project) -> list[Result]:
    """current, history, upgrade, downgrade, --sql, merge, autogenerate and stamp on the
    single-database repository, whose database is at its first revision."""
    rev1, rev2 = SINGLE
    url = project.url
    results: list[Result] = []

    def ok(*args: str, env: dict[str, str] = V2) -> Result:
        result = project.ok(*args, env=env)
        results.append(result)
        return result

    result = ok("current")
    assert rev1 in result.stdout and "(head)" not in result.stdout, str(result)
    result = ok("history")
    assert f"{rev1} -> {rev2} (head), add email to user" in result.stdout, str(result)
    assert f"<base> -> {rev1}, create user table" in result.stdout, str(result)

    result = ok("upgrade")
    assert "email" in columns(url, "user") and versions(url) == {rev2}, str(result)
    result = ok("downgrade")
    assert "email" not in columns(url, "user") and versions(url) == {rev1}, str(result)

    result = ok("upgrade", "--sql")
    assert "CREATE TABLE alembic_version" in result.stdout, str(result)
    assert "email" in result.stdout and f"'{rev2}'" in result.stdout, str(result)
    assert versions(url) == {rev1} and "email" not in columns(url, "user"), (
        f"--sql changed the database\n{result}"
    )

    merge = make_branch_and_merge(project, rev1, V2)
    result = ok("upgrade")
    assert versions(url) == {merge} and "email" in columns(url, "user"), str(result)

    # The old env.py's own hook drops a revision with no changes (cmd_opts.autogenerate).
    before = set(project.revision_files())
    result = ok("migrate", "-m", "nothing")
    assert set(project.revision_files()) == before, str(result)
    v3 = {"MODEL_VERSION": "3"}
    result = project.db("check", env=v3)
    assert result.returncode == 1 and len(error_lines(result)) == 1, str(result)
    result = ok("migrate", "-m", "three", env=v3)
    [new] = set(project.revision_files()) - before
    text = new.read_text(encoding="utf-8")
    assert "op.create_table('post'" in text and "Identifiers Alembic uses" in text, text

    result = ok("downgrade", rev1)
    assert versions(url) == {rev1} and "email" not in columns(url, "user"), str(result)
    result = ok("stamp", merge)
    assert versions(url) == {merge} and "email" not in columns(url, "user"), str(result)
    return results


def test_single_database_repository(make_project, front):
    project = legacy_project(make_project, "single")
    run_single_scenario(project)


# PostgreSQL adds the server side (and a password that SQLAlchemy 2 masks in str(url), which
# this env.py passes on); the front-ends are covered on SQLite above.
@pytest.mark.parametrize("front", ["script"])
def test_single_database_repository_postgresql(make_project, front, postgresql_url):
    project = legacy_project(make_project, "single", DATABASE_URL=postgresql_url)
    results = run_single_scenario(project)
    password = sa.engine.make_url(postgresql_url).password
    assert password
    for result in results:
        assert password not in result.output, str(result)
    for path in project.migrations.rglob("*.py"):
        assert password not in path.read_text(encoding="utf-8"), path


# --- Several databases ---------------------------------------------------------------------------


def run_multidb_scenario(project: Project, urls: dict[str, str]) -> list[Result]:
    """current, history, upgrade, downgrade, --sql, merge, stamp and autogenerate on the
    multi-database repository, the same on Flask-SQLAlchemy 3 as on 2."""
    rev1, rev2 = MULTI
    results: list[Result] = []

    def ok(*args: str, env: dict[str, str] = V2) -> Result:
        result = project.ok(*args, env=env)
        results.append(result)
        return result

    def at(revision: str | None, with_columns: bool | None) -> None:
        for name, (table, column) in MULTI_TABLES.items():
            assert versions(urls[name]) == ({revision} if revision else set()), (
                f"database {name}\n{result}"
            )
            found = tables(urls[name])
            if with_columns is None:
                assert found == {"alembic_version"}, f"database {name}\n{result}"
            else:
                assert (column in columns(urls[name], table)) == with_columns, (
                    f"database {name}\n{result}"
                )

    result = ok("current")
    assert result.stdout.count(rev1) == 3, str(result)
    result = ok("history")
    assert f"{rev1} -> {rev2} (head), add a column in every database" in result.stdout, (
        str(result)
    )
    result = ok("upgrade")
    at(rev2, True)
    result = ok("downgrade")
    at(rev1, False)

    # That env.py writes <name>.sql per database into the working directory ('' -> '.sql').
    result = ok("upgrade", "--sql")
    for name, (table, column) in MULTI_TABLES.items():
        script = project.path / (".sql" if name == "default" else f"{name}.sql")
        text = script.read_text(encoding="utf-8")
        assert f"CREATE TABLE {table} " in text and column in text, f"{script}:\n{text}"
        others = {other for other, _ in MULTI_TABLES.values()} - {table}
        assert not any(f"TABLE {other} " in text for other in others), f"{script}:\n{text}"
    at(rev1, False)

    merge = make_branch_and_merge(project, rev1, V2)
    result = ok("upgrade")
    at(merge, True)

    # Autogenerate sees every database's models, on Flask-SQLAlchemy 3 as on 2: with the
    # schema at the models, nothing to write (not a revision dropping the binds' tables).
    before = snapshot(project.migrations)
    for args in (("migrate", "-m", "x"), ("revision", "--autogenerate", "-m", "x"), ("check",)):
        result = ok(*args)
        assert "Traceback" not in result.output, str(result)
        assert snapshot(project.migrations) == before, str(result)
    at(merge, True)

    # A bind added since: its table is created there, and only there.
    audit = {**V2, "AUDIT_URL": f"sqlite:///{project.path / 'audit.db'}"}
    # The old revisions have nothing for it (2.x's dispatch would raise KeyError): the upgrade
    # records the head there, and autogenerate can follow.
    result = ok("upgrade", env=audit)
    assert versions(audit["AUDIT_URL"]) == {merge}, str(result)
    result = ok("migrate", "-m", "audit", "--rev-id", "a1", env=audit)
    [written] = [path for path in project.revision_files() if path.name.startswith("a1_")]
    text = written.read_text(encoding="utf-8")
    upgrades = {
        chunk.split("(", 1)[0]: chunk for chunk in text.split("\ndef upgrade_")[1:]
    }
    assert set(upgrades) == {"", "users", "logs", "audit"}, text
    for name, chunk in upgrades.items():
        body = chunk.split("\ndef ", 1)[0]
        assert ("create_table('audit_entry'" in body) == (name == "audit"), text
        assert "drop_" not in body and "add_column" not in body, text
    result = ok("upgrade", env=audit)
    assert tables(audit["AUDIT_URL"]) == {"alembic_version", "audit_entry"}, str(result)
    at("a1", True)
    result = ok("downgrade", env=audit)
    assert tables(audit["AUDIT_URL"]) == {"alembic_version"}, str(result)
    written.unlink()
    at(merge, True)

    result = ok("downgrade", "base")
    at(None, None)
    result = ok("stamp")
    at(merge, None)
    result = ok("current")
    assert result.stdout.count(f"{merge} (head)") == 3, str(result)
    return results


def test_multi_database_repository(make_project, front):
    project = legacy_project(make_project, "multidb")
    run_multidb_scenario(project, urls_of(project, "multidb"))


@pytest.mark.parametrize("front", ["flask"])
def test_multi_database_repository_postgresql(
    make_project, front, three_postgresql_databases, postgresql_server
):
    urls = {("default" if name == "" else name): url
            for name, url in three_postgresql_databases.items()}
    env = {DATABASES["multidb"][name]: url for name, url in urls.items()}
    project = legacy_project(make_project, "multidb", **env)
    results = run_multidb_scenario(project, urls)
    for result in results:
        assert postgresql_server.password not in result.output, str(result)


# --- The safety net ------------------------------------------------------------------------------


# The check runs below both front-ends, in the command layer: one of them is enough.
@pytest.mark.parametrize("front", ["flask"])
def test_autogenerate_that_would_wipe_a_database_is_refused(make_project, front):
    """An env.py the static check does not recognise, which hands a bind no models on
    Flask-SQLAlchemy 3: the run itself is refused before any file is written."""
    project = legacy_project(make_project, "multidb")
    env_py = project.migrations / "env.py"
    text = env_py.read_text(encoding="utf-8")
    # The same filter, spelt so that no pattern matches it.
    text = text.replace("table.info.get('bind_key')", "table.info.get(MARKER)")
    text = text.replace("USE_TWOPHASE = False", "USE_TWOPHASE = False\nMARKER = 'bind' + '_key'")
    env_py.write_text(text, encoding="utf-8")
    project.ok("upgrade", env=V2)
    before = snapshot(project.migrations)
    urls = urls_of(project, "multidb")
    for args in (("migrate", "-m", "x"), ("check",)):
        result = project.db(*args, env=V2)
        if STACK == "legacy":
            # Flask-SQLAlchemy 2 fills info['bind_key']: this env.py is right there.
            assert result.returncode == 0, str(result)
            continue
        assert result.returncode == 1, str(result)
        [error] = error_lines(result)
        assert "dropping every table of the bind 'users' (account)" in error, str(result)
        assert "'db doctor --fix'" in error and "Traceback" not in result.output, str(result)
        assert snapshot(project.migrations) == before, str(result)
        assert tables(urls["users"]) == {"account", "alembic_version"}, str(result)


# --- The fixtures are what the legacy stack produces ---------------------------------------------


@pytest.mark.skipif(STACK != "legacy", reason="the fixtures are built by the legacy stack")
def test_fixtures_are_what_the_legacy_stack_produces(tmp_path):
    from tests.legacy_repos import build

    for repo in build.REPOS:
        for relative, text in build.build(repo, tmp_path).items():
            committed = (REPOS / relative).read_text(encoding="utf-8")
            assert build.normalized(committed) == build.normalized(text), (
                f"{relative} differs from what the legacy stack produces now; run "
                "'.venv/legacy/bin/python tests/legacy_repos/build.py' and review the diff"
            )
