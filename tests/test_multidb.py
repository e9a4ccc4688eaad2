"""Multi-database folders (``init --multidb``, SPEC section 6) through both command lines.

The application is ``tests/apps/multidb``: a default database (model ``setting``) and the binds
``users`` (``account``) and ``logs`` (``event``); ``MODEL_VERSION=2`` adds one column in each.
Every database is checked on its own: its tables, its ``alembic_version``, and that the other
databases' tables never reach it.  The central scenario runs on SQLite through both front-ends
and once more on three real PostgreSQL databases.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import flask_migrate
from tests.conftest import Project, Result, columns, sqlite_url, tables, versions
from tests.folders import MULTIDB, install
from tests.multidb_helpers import NEW_COLUMNS, TABLES, URL_VARIABLES, V2, read_revision

TEMPLATES = Path(flask_migrate.__file__).parent / "templates"

def body_has_operations(source: str) -> bool:
    """Whether a function's source calls any ``op.``/``batch_op.`` operation."""
    return "op." in source


def urls_of(project: Project) -> dict[str, str]:
    return {name: project.env[variable] for name, variable in URL_VARIABLES.items()}


def run_central_scenario(
    project: Project, urls: dict[str, str], kind: str = "stock"
) -> list[Result]:
    """init --multidb, migrate, upgrade, no-change migrate, current, a second revision,
    history, downgrade one step and to base; each database checked after every step.

    With a ``kind`` other than ``"stock"``, the folder is that generation's multi-database
    folder (tests/folders.py) instead of what ``init --multidb`` writes.

    Returns every command's result, for checks the caller adds (e.g. leaked passwords).
    """
    results = []

    def ok(*args: str, **kwargs) -> Result:
        result = project.ok(*args, **kwargs)
        results.append(result)
        return result

    if kind == "stock":
        result = ok("init", "--multidb")
        env_py = (project.migrations / "env.py").read_text(encoding="utf-8")
        assert env_py == (TEMPLATES / "flask-multidb" / "env.py").read_text(encoding="utf-8"), (
            f"init --multidb should write the flask-multidb template's env.py\n{result}"
        )
    else:
        install(kind, project.migrations)

    # First revision: one upgrade_<name>()/downgrade_<name>() pair per database, each with only
    # its own database's table.
    result = ok("migrate", "-m", "one")
    [first] = project.revision_files()
    rev1, down, functions = read_revision(first)
    assert down is None, str(result)
    for name, table in TABLES.items():
        upgrade, downgrade = functions.get(f"upgrade_{name}"), functions.get(f"downgrade_{name}")
        assert upgrade is not None and downgrade is not None, (
            f"no upgrade_{name}()/downgrade_{name}() in {first.name}: {sorted(functions)}\n"
            f"{result}"
        )
        assert f"op.create_table('{table}'" in upgrade, f"{upgrade}\n{result}"
        assert f"op.drop_table('{table}'" in downgrade, f"{downgrade}\n{result}"
        for other in set(TABLES.values()) - {table}:
            assert f"'{other}'" not in upgrade + downgrade, (
                f"table {other} appears in the functions of database '{name}':\n{upgrade}\n"
                f"{downgrade}\n{result}"
            )
    assert {"upgrade", "downgrade"} <= set(functions), f"{sorted(functions)}\n{result}"

    result = ok("upgrade")
    for name, table in TABLES.items():
        assert tables(urls[name]) == {table, "alembic_version"}, f"database '{name}'\n{result}"
        assert versions(urls[name]) == {rev1}, f"database '{name}'\n{result}"

    # Models and databases agree everywhere: autogenerate must write nothing.
    result = ok("migrate", "-m", "nothing")
    assert project.revision_files() == [first], str(result)
    assert "No changes in schema detected" in result.output or kind != "stock", str(result)

    result = ok("current")
    assert result.stdout.count(f"{rev1} (head)") == len(TABLES), (
        f"current should show {rev1} (head) once per database\n{result}"
    )

    # Second revision: a column in every database.
    result = ok("migrate", "-m", "two", env=V2)
    files = project.revision_files()
    assert len(files) == 2, str(result)
    [second] = [path for path in files if path != first]
    rev2, down, functions = read_revision(second)
    assert down == rev1, str(result)
    for name, table in TABLES.items():
        upgrade = functions.get(f"upgrade_{name}", "")
        downgrade = functions.get(f"downgrade_{name}", "")
        assert f"'{table}'" in upgrade and f"'{NEW_COLUMNS[name]}'" in upgrade, (
            f"upgrade_{name}() of {second.name}:\n{upgrade}\n{result}"
        )
        assert f"'{NEW_COLUMNS[name]}'" in downgrade, f"{downgrade}\n{result}"
        for other in set(NEW_COLUMNS.values()) - {NEW_COLUMNS[name]}:
            assert f"'{other}'" not in upgrade, f"{upgrade}\n{result}"

    result = ok("upgrade", env=V2)
    for name, table in TABLES.items():
        assert NEW_COLUMNS[name] in columns(urls[name], table), f"database '{name}'\n{result}"
        assert versions(urls[name]) == {rev2}, f"database '{name}'\n{result}"

    result = ok("history", env=V2)
    assert f"{rev1} -> {rev2} (head), two" in result.stdout, str(result)
    assert f"<base> -> {rev1}, one" in result.stdout, str(result)

    result = ok("downgrade", env=V2)
    for name, table in TABLES.items():
        found = columns(urls[name], table)
        assert NEW_COLUMNS[name] not in found and "id" in found, f"database '{name}'\n{result}"
        assert versions(urls[name]) == {rev1}, f"database '{name}'\n{result}"

    result = ok("downgrade", "base")
    for name in TABLES:
        assert tables(urls[name]) == {"alembic_version"}, f"database '{name}'\n{result}"
        assert versions(urls[name]) == set(), f"database '{name}'\n{result}"
    return results


def test_multidb_scenario_sqlite(make_project, front):
    project = make_project("multidb")
    run_central_scenario(project, urls_of(project))


@pytest.mark.parametrize(
    "kind, front", [(kind, ("script", "flask")[index % 2]) for index, kind in enumerate(MULTIDB)]
)
def test_multidb_scenario_on_older_flask_migrate_folders(make_project, kind, front):
    """The same scenario on the multi-database folders older Flask-Migrates wrote (their
    env.py picks each bind's tables by info['bind_key'], or knows Flask-SQLAlchemy 3), unchanged:
    autogenerate sees every database's models, and each database is migrated on its own."""
    project = make_project("multidb")
    results = run_central_scenario(project, urls_of(project), kind)
    for result in results:
        assert "Traceback" not in result.output, str(result)


# The database side is what PostgreSQL adds; the front-ends are covered on SQLite above.
@pytest.mark.parametrize("front", ["script"])
def test_multidb_scenario_postgresql(
    make_project, front, three_postgresql_databases, postgresql_server
):
    urls = three_postgresql_databases
    project = make_project(
        "multidb", **{URL_VARIABLES[name]: url for name, url in urls.items()}
    )
    results = run_central_scenario(project, urls)
    for result in results:
        assert postgresql_server.password not in result.output, str(result)
    for path in project.migrations.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert postgresql_server.password not in text, f"password written to {path}"


def test_binds_only(make_project, front):
    """No SQLALCHEMY_DATABASE_URI: only the binds are migrated; revisions have no upgrade_()."""
    project = make_project("multidb", NO_DEFAULT="1")
    urls = urls_of(project)
    project.ok("init", "--multidb")
    result = project.ok("migrate", "-m", "binds")
    [path] = project.revision_files()
    rev, _, functions = read_revision(path)
    assert "upgrade_" not in functions and "downgrade_" not in functions, (
        f"{path.name} has functions for a default database: {sorted(functions)}\n{result}"
    )
    assert "op.create_table('account'" in functions.get("upgrade_users", ""), str(result)
    assert "op.create_table('event'" in functions.get("upgrade_logs", ""), str(result)
    assert "setting" not in path.read_text(encoding="utf-8"), str(result)

    result = project.ok("upgrade")
    assert tables(urls["users"]) == {"account", "alembic_version"}, str(result)
    assert tables(urls["logs"]) == {"event", "alembic_version"}, str(result)
    assert versions(urls["users"]) == versions(urls["logs"]) == {rev}, str(result)
    # The default database's URL is in the environment but not in the configuration.
    assert not (project.path / "app.db").exists(), f"the default database was touched\n{result}"

    result = project.ok("current")
    assert result.stdout.count(f"{rev} (head)") == 2, str(result)


def test_offline_sql_one_script_per_database(make_project, front):
    """--sql writes default.sql, users.sql and logs.sql in the working directory, each with its
    own database's statements, and connects to none of the databases."""
    project = make_project("multidb")
    urls = urls_of(project)
    project.ok("init", "--multidb")
    result = project.ok("migrate", "-m", "one")
    [path] = project.revision_files()
    rev, _, _ = read_revision(path)
    # migrate connected to each database (Alembic creates an empty alembic_version there).
    before = {name: tables(url) for name, url in urls.items()}
    assert all(TABLES[name] not in found for name, found in before.items()), f"{before}\n{result}"
    scripts = {name: project.path / f"{name or 'default'}.sql" for name in TABLES}

    def read_scripts(result: Result) -> dict[str, str]:
        found = {}
        for name, script in scripts.items():
            assert script.is_file(), f"no {script.name}\n{result}"
            found[name] = script.read_text(encoding="utf-8")
        assert sorted(p.name for p in project.path.glob("*.sql")) == sorted(
            p.name for p in scripts.values()
        ), str(result)
        return found

    result = project.ok("upgrade", "--sql")
    for name, text in read_scripts(result).items():
        assert f"CREATE TABLE {TABLES[name]} " in text, f"{scripts[name].name}:\n{text}\n{result}"
        assert "CREATE TABLE alembic_version" in text, f"{text}\n{result}"
        assert f"INSERT INTO alembic_version (version_num) VALUES ('{rev}')" in text, (
            f"{text}\n{result}"
        )
        for other in set(TABLES.values()) - {TABLES[name]}:
            assert other not in text, f"{other} in {scripts[name].name}:\n{text}\n{result}"

    result = project.ok("downgrade", "--sql")
    for name, text in read_scripts(result).items():
        assert f"DROP TABLE {TABLES[name]}" in text, f"{scripts[name].name}:\n{text}\n{result}"
        delete = f"DELETE FROM alembic_version WHERE alembic_version.version_num = '{rev}'"
        assert delete in text, f"{text}\n{result}"
        assert "CREATE TABLE " + TABLES[name] not in text, f"{text}\n{result}"
        for other in set(TABLES.values()) - {TABLES[name]}:
            assert other not in text, f"{other} in {scripts[name].name}:\n{text}\n{result}"

    result = project.ok("stamp", "--sql")
    for name, text in read_scripts(result).items():
        assert f"INSERT INTO alembic_version (version_num) VALUES ('{rev}')" in text, (
            f"{scripts[name].name}:\n{text}\n{result}"
        )
        assert all(table not in text for table in TABLES.values()), f"{text}\n{result}"

    for name, url in urls.items():
        assert tables(url) == before[name], f"--sql changed database '{name}'\n{result}"
        assert versions(url) == set(), f"--sql changed database '{name}'\n{result}"


def test_bind_added_after_revisions(make_project, front):
    """A bind configured after revisions exist: the old revisions, which have no
    upgrade_audit(), neither break its upgrade nor its downgrade."""
    project = make_project("addbind")
    main, users = project.env["DATABASE_URL"], project.env["USERS_URL"]
    audit = sqlite_url(project.path / "audit.db")
    with_audit = {"AUDIT_URL": audit}
    project.ok("init", "--multidb")
    project.ok("migrate", "-m", "one")
    result = project.ok("upgrade")
    [first] = project.revision_files()
    rev1, _, functions = read_revision(first)
    assert "upgrade_audit" not in functions, str(result)

    result = project.ok("upgrade", env=with_audit)
    assert tables(audit) == {"alembic_version"}, str(result)
    assert versions(audit) == versions(main) == versions(users) == {rev1}, str(result)

    # Only the new database has changes: only its functions get operations.
    result = project.ok("migrate", "-m", "audit", env=with_audit)
    [second] = [path for path in project.revision_files() if path != first]
    rev2, down, functions = read_revision(second)
    assert down == rev1, str(result)
    assert "op.create_table('audit_entry'" in functions.get("upgrade_audit", ""), str(result)
    for name in ("", "users"):
        assert not body_has_operations(functions[f"upgrade_{name}"]), (
            f"upgrade_{name}() of {second.name} should be empty:\n"
            f"{functions[f'upgrade_{name}']}\n{result}"
        )

    result = project.ok("upgrade", env=with_audit)
    assert tables(audit) == {"audit_entry", "alembic_version"}, str(result)
    assert versions(audit) == versions(main) == versions(users) == {rev2}, str(result)

    result = project.ok("downgrade", "base", env=with_audit)
    for url in (main, users, audit):
        assert tables(url) == {"alembic_version"}, f"{url}\n{result}"
        assert versions(url) == set(), f"{url}\n{result}"
