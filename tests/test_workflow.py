"""The single-database workflow, end to end, through the real command lines.

Every test runs ``flask db ...`` and ``python manage.py db ...`` (the ``front`` fixture) in
subprocesses against a fresh copy of a small application (``tests/apps/``), and checks what
really happened: tables and columns in the database, rows of ``alembic_version``, revision files
on disk, exit statuses and output.  The central scenario (``test_workflow``) also runs on a real
PostgreSQL server; everything else runs on SQLite only.

Tests are deliberately few and long: each subprocess costs most of a second, and one scenario
per front-end that builds on its own earlier steps shows more than many tests that each re-run
``init``.  Every step asserts on its outcome, so a failure names the step that broke.
"""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import Project, Result, columns, tables, versions
from tests.folders import SINGLE, install
from tests.workflow_helpers import (
    add_to_env_py,
    add_version_location,
    assert_clean_failure,
    error_lines,
    files_under,
    lines_with,
    only_new,
    read_revision,
    revisions,
    write_editor,
)


#: The folder kinds of the workflow beyond the stock one: every generation of the original
#: Flask-Migrate's single-database folders (tests/folders.py), each through one front-end, the
#: two front-ends taking turns.
GENERATION_RUNS = [(kind, ("flask", "script")[index % 2]) for index, kind in enumerate(SINGLE)]


def _workflow(project: Project, kind: str = "stock") -> list[Result]:
    """init -> migrate -> upgrade -> change the model -> migrate -> upgrade -> downgrade -> ...

    With a ``kind`` other than ``"stock"``, the folder is that generation's (an older
    Flask-Migrate's env.py, alembic.ini and script.py.mako) instead of what ``init`` writes.
    Returns every run, so the caller can check the output of all of them.
    """
    url = project.url
    results: list[Result] = []

    def ok(*args: str, **kwargs) -> Result:
        result = project.ok(*args, **kwargs)
        results.append(result)
        return result

    if kind == "stock":
        # init: the folder, its files, and nothing in the database.
        result = ok("init")
        for name in ("env.py", "alembic.ini", "script.py.mako", "README"):
            assert (project.migrations / name).is_file(), f"{name} missing\n{result}"
        assert (project.migrations / "versions").is_dir(), str(result)
        assert project.revision_files() == [], str(result)
        assert "alembic_version" not in tables(url), str(result)
        assert "db migrate" in result.stdout, f"init should say what comes next\n{result}"
    else:
        install(kind, project.migrations)

    # migrate: one revision file that creates the table; the database is not touched.
    result = ok("migrate", "-m", "create users")
    files = revisions(project)
    assert len(files) == 1, f"{files}\n{result}"
    (first,) = files.values()
    assert first.down_revision is None, first.text
    assert "op.create_table('user'" in first.text or 'op.create_table("user"' in first.text, (
        first.text)
    assert "create users" in first.text, first.text
    assert "user" not in tables(url), str(result)

    # upgrade: the table exists and alembic_version holds the revision.
    result = ok("upgrade")
    assert set(columns(url, "user")) == {"id", "name"}, str(result)
    assert versions(url) == {first.revision}, str(result)

    result = ok("current")
    assert first.revision in result.stdout and "(head)" in result.stdout, str(result)

    # Nothing changed: migrate writes no file and says so.
    result = ok("migrate", "-m", "nothing")
    assert "No changes" in result.output or kind != "stock", str(result)
    assert set(revisions(project)) == {first.revision}, str(result)
    # The next upgrade at head answers from the memo of the folder's heads.
    memo = project.migrations / "versions" / "__pycache__" / "flask_migrate_heads.json"
    assert memo.is_file(), str(result)

    # The model changes (User.email); `check` has its own test (test_check).
    project.env["MODEL_VERSION"] = "2"
    result = ok("migrate", "-m", "add email")
    second = only_new(files, revisions(project))
    assert second.down_revision == first.revision, second.text
    assert "add_column" in second.text and "'email'" in second.text, second.text
    assert "email" not in columns(url, "user"), str(result)

    result = ok("upgrade")
    assert set(columns(url, "user")) == {"id", "name", "email"}, str(result)
    assert versions(url) == {second.revision}, str(result)

    result = ok("migrate", "-m", "nothing again")
    assert "No changes" in result.output or kind != "stock", str(result)
    assert set(revisions(project)) == {first.revision, second.revision}, str(result)

    # Reporting commands.
    result = ok("current")
    assert second.revision in result.stdout and "(head)" in result.stdout, str(result)
    assert first.revision not in result.stdout, str(result)

    result = ok("history")
    newer = lines_with(result.stdout, f"-> {second.revision}")
    older = lines_with(result.stdout, f"-> {first.revision}")
    assert newer and older and newer[0] < older[0], str(result)
    assert "<base>" in result.stdout.splitlines()[older[0]], str(result)
    assert "add email" in result.stdout and "create users" in result.stdout, str(result)

    result = ok("heads")
    assert second.revision in result.stdout and first.revision not in result.stdout, str(result)

    result = ok("show", first.revision)
    assert f"Rev: {first.revision}" in result.stdout, str(result)
    assert "create users" in result.stdout, str(result)
    assert second.revision not in result.stdout.split("Path:")[0], str(result)

    # downgrade (one step by default), then back up.
    result = ok("downgrade")
    assert set(columns(url, "user")) == {"id", "name"}, str(result)
    assert versions(url) == {first.revision}, str(result)
    result = ok("current")
    assert first.revision in result.stdout and "(head)" not in result.stdout, str(result)

    result = ok("upgrade")
    assert set(columns(url, "user")) == {"id", "name", "email"}, str(result)
    assert versions(url) == {second.revision}, str(result)

    # All the way down, and up to a named revision.
    result = ok("downgrade", "base")
    assert "user" not in tables(url), str(result)
    assert versions(url) == set(), str(result)
    result = ok("upgrade", first.revision)
    assert set(columns(url, "user")) == {"id", "name"}, str(result)
    assert versions(url) == {first.revision}, str(result)

    # Two revision files in all: the "no changes" runs wrote nothing.
    assert set(revisions(project)) == {first.revision, second.revision}
    return results


def test_workflow(make_project, front):
    _workflow(make_project("single"))


@pytest.mark.parametrize("kind, front", GENERATION_RUNS)
def test_workflow_on_older_flask_migrate_folders(make_project, kind, front):
    """The same workflow on a folder that an older Flask-Migrate wrote, its env.py unchanged:
    every command works, with progress reported as on the stock folder."""
    results = _workflow(make_project("single"), kind)
    upgrades = [result for result in results if "upgrade" in result.args[-2:]]
    assert any("[flask_migrate] Applied" in result.stderr for result in upgrades), (
        "\n".join(str(result) for result in upgrades))
    for result in results:
        assert "Traceback" not in result.output, str(result)


def test_workflow_postgresql(make_project, front, postgresql_url):
    project = make_project("single", DATABASE_URL=postgresql_url)
    results = _workflow(project)
    assert columns(postgresql_url, "user")["name"].length == 128
    # The password is in DATABASE_URL only: no output and no generated file may show it.
    password = sa.engine.make_url(postgresql_url).password
    assert password
    for result in results:
        assert password not in result.output, str(result)
    for path in files_under(project.migrations):
        if path.suffix in (".py", ".ini", ".mako", ""):
            assert password not in path.read_text(encoding="utf-8"), path


def test_check(make_project, front):
    """check: 0 when the models match the head, 1 with an `Error:` line otherwise."""
    project = make_project("single")
    project.ok("init")
    project.ok("migrate", "-m", "v1")
    project.ok("upgrade")

    # An un-migrated model change.
    project.env["MODEL_VERSION"] = "2"
    result = project.db("check")
    assert_clean_failure(result, 1, "email", "migrate")

    # The revision exists but is not applied yet: check says to upgrade.
    project.ok("migrate", "-m", "v2")
    result = project.db("check")
    assert_clean_failure(result, 1, "upgrade")

    # Up to date: exit 0, and no revision written.
    project.ok("upgrade")
    result = project.db("check")
    assert result.returncode == 0, str(result)
    assert "Traceback" not in result.output and not error_lines(result), str(result)
    assert len(project.revision_files()) == 2, f"check must not write a revision\n{result}"


def test_type_change_autogenerated_and_applied_in_batch_mode(make_project, front):
    """compare_type and render_as_batch are on by default: SQLite can widen a column."""
    project = make_project("single")
    url = project.url
    project.ok("init")
    project.ok("migrate", "-m", "v1")
    project.ok("upgrade")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO user (id, name) VALUES (7, 'ada')"))
    engine.dispose()
    assert columns(url, "user")["name"].length == 128

    before = revisions(project)
    project.env["MODEL_VERSION"] = "3"
    result = project.ok("migrate", "-m", "widen name")
    widen = only_new(before, revisions(project))
    text = widen.text
    assert "batch_alter_table('user'" in text or 'batch_alter_table("user"' in text, text
    assert "alter_column('name'" in text or 'alter_column("name"' in text, text
    assert "length=128" in text and "length=256" in text, text
    assert "create_table('post'" in text or 'create_table("post"' in text, text
    assert "Detected type change" in result.output, str(result)

    result = project.ok("upgrade")
    assert columns(url, "user")["name"].length == 256, str(result)
    assert {"email", "name", "id"} == set(columns(url, "user")), str(result)
    assert "post" in tables(url), str(result)
    assert versions(url) == {widen.revision}, str(result)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT id, name FROM user")).all()
    engine.dispose()
    assert [tuple(row) for row in rows] == [(7, "ada")], f"batch copy lost the data\n{result}"

    result = project.ok("downgrade")
    assert columns(url, "user")["name"].length == 128, str(result)
    assert "post" not in tables(url), str(result)


def test_revision_options_and_edit(make_project, front, tmp_path):
    """revision: empty and --autogenerate, --rev-id, --version-path; edit with $EDITOR."""
    project = make_project("single")
    url = project.url
    project.ok("init")

    result = project.ok("revision", "-m", "empty one", "--rev-id", "aaa111")
    empty = project.migrations / "versions" / "aaa111_empty_one.py"
    assert empty.is_file(), f"{project.revision_files()}\n{result}"
    info = read_revision(empty)
    assert info.revision == "aaa111" and info.down_revision is None, info.text
    assert "op." not in info.text.split("def upgrade")[1], info.text
    assert tables(url) - {"alembic_version"} == set(), str(result)

    result = project.ok("upgrade")
    assert versions(url) == {"aaa111"}, str(result)
    assert "user" not in tables(url), str(result)

    result = project.ok("revision", "--autogenerate", "-m", "auto", "--rev-id", "bbb222")
    auto = read_revision(project.migrations / "versions" / "bbb222_auto.py")
    assert auto.down_revision == "aaa111", auto.text
    assert "create_table('user'" in auto.text or 'create_table("user"' in auto.text, auto.text

    # --version-path: the file lands in the extra folder declared in alembic.ini.
    add_version_location(project, "extra")
    result = project.ok(
        "revision", "-m", "elsewhere", "--rev-id", "ccc333", "--version-path", "migrations/extra"
    )
    extra = project.migrations / "extra" / "ccc333_elsewhere.py"
    assert extra.is_file(), f"{sorted(files_under(project.migrations))}\n{result}"
    assert not list((project.migrations / "versions").glob("ccc333*")), str(result)
    assert read_revision(extra).down_revision == "bbb222", extra.read_text()
    result = project.ok("heads")
    assert "ccc333" in result.stdout, str(result)
    result = project.ok("upgrade")
    assert versions(url) == {"ccc333"}, str(result)
    assert "user" in tables(url), str(result)

    # edit: $EDITOR gets the head's file by default, or the revision named.
    editor = write_editor(tmp_path / "editor.sh", "edited-by-test")
    result = project.ok("edit", env={"EDITOR": str(editor)})
    assert extra.read_text().rstrip().endswith("# edited-by-test"), str(result)
    assert "edited-by-test" not in empty.read_text(), str(result)
    result = project.ok("edit", "aaa111", env={"EDITOR": str(editor)})
    assert empty.read_text().rstrip().endswith("# edited-by-test"), str(result)
    assert "edited-by-test" not in auto.path.read_text(), str(result)


def test_branches_merge_and_stamp(make_project, front):
    """--head/--splice/--branch-label, heads, branches, merge heads, stamp (--purge, base)."""
    project = make_project("single")
    url = project.url
    project.ok("init")
    project.ok("revision", "-m", "base", "--rev-id", "base1")
    project.ok("revision", "-m", "one", "--rev-id", "one1")
    project.ok("upgrade")
    assert versions(url) == {"one1"}

    # A non-head revision as --head needs --splice.
    result = project.db("revision", "-m", "nope", "--head", "base1", "--rev-id", "nope1")
    assert_clean_failure(result, 1, "base1", "--splice")
    assert not list((project.migrations / "versions").glob("nope1*")), str(result)

    result = project.ok(
        "revision", "-m", "two", "--head", "base1", "--splice", "--branch-label", "feature",
        "--rev-id", "two1",
    )
    two = read_revision(project.migrations / "versions" / "two1_two.py")
    assert two.down_revision == "base1", two.text
    assert tuple(two.branch_labels) == ("feature",), two.text

    result = project.ok("revision", "-m", "three", "--head", "feature@head", "--rev-id", "three1")
    assert read_revision(project.migrations / "versions" / "three1_three.py").down_revision == (
        "two1"), str(result)

    result = project.ok("heads")
    assert "one1 (head)" in result.stdout and "three1" in result.stdout, str(result)
    assert "feature" in result.stdout and "base1" not in result.stdout, str(result)

    result = project.ok("branches")
    assert "base1" in result.stdout and "branchpoint" in result.stdout, str(result)
    assert "-> one1" in result.stdout and "-> two1" in result.stdout, str(result)

    # Two heads: a plain upgrade cannot choose.  Its message is checked at the end, so that a
    # poor message does not hide the steps below.
    two_heads = project.db("upgrade")
    assert two_heads.returncode == 1, str(two_heads)
    assert versions(url) == {"one1"}, str(two_heads)

    result = project.ok("upgrade", "feature@head")
    assert versions(url) == {"one1", "three1"}, str(result)

    before = revisions(project)
    result = project.ok("merge", "heads", "-m", "join branches")
    merged = only_new(before, revisions(project))
    assert merged.parents == {"one1", "three1"}, merged.text
    assert "join branches" in merged.text, merged.text
    result = project.ok("upgrade")
    assert versions(url) == {merged.revision}, "one head again after the merge\n" + str(result)

    # stamp: the version table only, never the schema.
    result = project.ok("stamp", "one1")
    assert versions(url) == {"one1"}, str(result)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('deadbeef0000')"))
    engine.dispose()
    result = project.db("stamp", "head")
    assert result.returncode == 1, str(result)
    assert "deadbeef0000" in result.stderr, str(result)
    assert versions(url) == {"one1", "deadbeef0000"}, str(result)
    result = project.ok("stamp", "--purge", "head")
    assert versions(url) == {merged.revision}, str(result)
    result = project.ok("stamp", "base")
    assert versions(url) == set(), str(result)
    result = project.ok("stamp")
    assert versions(url) == {merged.revision}, str(result)

    # The two-heads failure: one sentence saying what to do, no traceback.
    assert_clean_failure(two_heads, 1, "head", "merge")


def test_offline_sql(make_project, front):
    """--sql prints the SQL and leaves the database alone; downgrade --sql defaults to head:-1."""
    project = make_project("single")
    url = project.url
    project.ok("init")
    project.ok("migrate", "-m", "create users", "--rev-id", "r1")
    project.ok("revision", "-m", "second", "--rev-id", "r2")
    # Autogenerate read the empty database (Alembic may have created its version table).
    untouched = tables(url)
    assert "user" not in untouched and versions(url) == set()

    result = project.ok("upgrade", "--sql")
    out = result.stdout
    assert "CREATE TABLE alembic_version" in out, str(result)
    assert "CREATE TABLE user" in out, str(result)
    assert "INSERT INTO alembic_version (version_num) VALUES ('r1')" in out, str(result)
    assert "SET version_num='r2'" in out, str(result)
    assert tables(url) == untouched and versions(url) == set(), str(result)

    result = project.ok("upgrade", "--sql", "r1:r2")
    assert "CREATE TABLE user" not in result.stdout, str(result)
    assert "SET version_num='r2' WHERE alembic_version.version_num = 'r1'" in result.stdout, (
        str(result))

    # Without a database to read the current revision from, downgrade --sql means head:-1.
    result = project.ok("downgrade", "--sql")
    assert "SET version_num='r1' WHERE alembic_version.version_num = 'r2'" in result.stdout, (
        str(result))
    assert "DROP TABLE" not in result.stdout, str(result)

    result = project.ok("downgrade", "--sql", "r1:base")
    assert "DROP TABLE user" in result.stdout, str(result)
    assert "DELETE FROM alembic_version WHERE alembic_version.version_num = 'r1'" in (
        result.stdout), str(result)

    result = project.ok("stamp", "--sql", "r2")
    assert "INSERT INTO alembic_version (version_num) VALUES ('r2')" in result.stdout, str(result)
    assert "CREATE TABLE user" not in result.stdout, str(result)

    assert tables(url) == untouched, "--sql must not touch the database"
    assert versions(url) == set(), "--sql must not touch the database"


X_RECORDER = '''
import json as _json
from alembic import context as _context

with open("x_args.json", "w") as _file:
    _json.dump(
        {"x": _context.get_x_argument(as_dictionary=True), "tag": _context.get_tag_argument()},
        _file,
    )
'''


def test_x_arguments_reach_env_py(make_project, front):
    project = make_project("single")
    project.ok("init")
    add_to_env_py(project, X_RECORDER)
    project.ok("revision", "-m", "one", "--rev-id", "r1")
    recorded = project.path / "x_args.json"

    def seen(result: Result) -> dict:
        assert recorded.is_file(), f"env.py did not run\n{result}"
        data = json.loads(recorded.read_text())
        recorded.unlink()
        return data

    result = project.ok("upgrade", "-x", "k=v", "-x", "n=2", "--tag", "t1")
    assert seen(result) == {"x": {"k": "v", "n": "2"}, "tag": "t1"}, str(result)
    assert versions(project.url) == {"r1"}

    # Group level, before the command, as in Flask-Migrate 4.1.
    result = project.ok("-x", "k=group", "downgrade")
    assert seen(result) == {"x": {"k": "group"}, "tag": None}, str(result)
    assert versions(project.url) == set()

    # Both: the command's own -x wins.
    result = project.ok("-x", "k=group", "upgrade", "-x", "k=command")
    assert seen(result) == {"x": {"k": "command"}, "tag": None}, str(result)

    result = project.ok("migrate", "-x", "k=migrate", "-m", "auto")
    assert seen(result) == {"x": {"k": "migrate"}, "tag": None}, str(result)


def test_directory_options(make_project, front):
    """-d before or after the command, the command's -d first, $FLASK_DB_DIRECTORY, Migrate()."""
    project = make_project("single")
    url = project.url
    result = project.ok("init", "-d", "other")
    assert (project.path / "other" / "env.py").is_file(), str(result)
    assert not project.migrations.exists(), str(result)

    # Without any -d, the default folder "migrations" does not exist.
    result = project.db("upgrade")
    assert_clean_failure(result, 1, "migrations", "init")
    assert tables(url) == set(), str(result)

    result = project.ok("-d", "other", "migrate", "-m", "first")
    (rev,) = revisions(project, "other")
    result = project.ok("-d", "other", "upgrade")
    assert versions(url) == {rev} and "user" in tables(url), str(result)

    result = project.ok("downgrade", "-d", "other")
    assert versions(url) == set() and "user" not in tables(url), str(result)

    result = project.ok("-d", "nowhere", "upgrade", "-d", "other")
    assert versions(url) == {rev}, str(result)

    result = project.ok("downgrade", env={"FLASK_DB_DIRECTORY": "other"})
    assert versions(url) == set(), str(result)

    result = project.ok("-d", "other", "upgrade", env={"FLASK_DB_DIRECTORY": "nowhere"})
    assert versions(url) == {rev}, str(result)

    # Migrate(app, db, directory=...) is the default when nothing else is given.
    result = project.ok("current", env={"MIGRATE_DIRECTORY": "other"})
    assert rev in result.stdout, str(result)
    result = project.ok("downgrade", env={"MIGRATE_DIRECTORY": "other"})
    assert versions(url) == set(), str(result)


def test_factory_app(make_project, front):
    """Manager(create_app) with `-c testing`, and FLASK_APP naming the factory."""
    project = make_project("factory")
    app_db = project.url
    test_db = project.env["TEST_DATABASE_URL"]
    if front == "flask":
        testing = {"env": {"FLASK_APP": "app:create_app('testing')"}}
    else:
        testing = {"manager_args": ["-c", "testing"]}

    project.ok("init")
    project.ok("migrate", "-m", "items")
    (rev,) = revisions(project)
    assert "item" not in tables(app_db)

    result = project.ok("upgrade", **testing)
    assert "item" in tables(test_db) and versions(test_db) == {rev}, str(result)
    assert "item" not in tables(app_db) and versions(app_db) == set(), str(result)

    result = project.ok("current", **testing)
    assert rev in result.stdout, str(result)
    result = project.ok("current")
    assert rev not in result.stdout, str(result)

    result = project.ok("upgrade")
    assert "item" in tables(app_db) and versions(app_db) == {rev}, str(result)


def test_exit_statuses(make_project, front):
    """0 on success, 1 with one `Error:` line for a failure, 2 for a usage error."""
    project = make_project("single")

    result = project.db("upgrade")
    assert_clean_failure(result, 1, "init")
    assert not project.migrations.exists(), str(result)
    assert tables(project.url) == set(), str(result)

    result = project.db("upgrade", "--no-such-option")
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.output, str(result)

    result = project.db("no-such-command")
    assert result.returncode == 2, str(result)
    assert "Traceback" not in result.output, str(result)

    result = project.ok("list-templates")
    for name in ("flask", "flask-multidb", "aioflask", "aioflask-multidb"):
        assert name in result.stdout, str(result)

    project.ok("init")
    result = project.db("init")
    assert_clean_failure(result, 1, "exists")

    result = project.db("init", "--template", "no-such-template", "-d", "elsewhere")
    assert result.returncode in (1, 2), str(result)
    assert_clean_failure(result, result.returncode, "no-such-template")
    assert not (project.path / "elsewhere").exists(), str(result)

    result = project.db("upgrade", "fedcba987654")
    assert_clean_failure(result, 1, "fedcba987654")
    assert tables(project.url) - {"alembic_version"} == set(), str(result)


def test_broken_alembic_ini_is_an_error_not_a_traceback(make_project, front):
    """A hand-edited alembic.ini that cannot be parsed is the user's mistake: one sentence."""
    project = make_project("single")
    project.ok("init")
    ini = project.migrations / "alembic.ini"
    ini.write_text(ini.read_text() + "\nversion_locations = a\nversion_locations = b\n")
    result = project.db("heads")
    assert_clean_failure(result, 1, "alembic.ini")
