"""``db doctor`` and ``db convert-multidb``: diagnosing, repairing and converting a migrations
folder, through the real command lines; and, in-process, how env.py files are recognised and
what keeps a Flask-Migrate 2.x env.py working.

The repositories are those of ``tests/legacy_repos`` (see tests/test_legacy.py); the conversion
uses ``tests/apps/growbind``, a single-database application that grows a bind.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

import flask_migrate
from flask_migrate import compat, folder
from tests.conftest import STACK, Result, sqlite_url, tables, versions
from tests.legacy_helpers import MULTI, REPOS, SINGLE, legacy_project, snapshot, urls_of
from tests.multidb_helpers import V2, read_revision
from tests.workflow_helpers import error_lines

TEMPLATES = Path(flask_migrate.__file__).parent / "templates"


def backups(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}.bak-*"))


def template(name: str, filename: str) -> str:
    return (TEMPLATES / name / filename).read_text(encoding="utf-8")


def finding_lines(result: Result, severity: str, text: str | None = None) -> list[str]:
    """The findings of one severity, each on one line (doctor wraps them as paragraphs)."""
    findings: list[str] = []
    current: list[str] | None = None
    for line in (result.stdout if text is None else text).splitlines():
        if line.startswith(("ERROR ", "WARNING ", "NOTE ")):
            current = [line] if line.startswith(severity.upper() + " ") else None
            if current is not None:
                findings.append("")
        elif current is not None and line.startswith(" " * 9):
            current.append(line.strip())
        else:
            current = None
        if current is not None:
            findings[-1] = " ".join(current)
    return findings


# --- doctor --------------------------------------------------------------------------------------


def test_doctor_on_a_healthy_folder(make_project, front):
    """Exit 0 and 'Nothing to do' for a folder made by init; --fix changes nothing; no folder
    at all is one Error line."""
    project = make_project("single")
    result = project.db("doctor")
    assert result.returncode == 1, str(result)
    [error] = error_lines(result)
    assert "no migrations folder" in error and "'db init'" in error, str(result)

    project.ok("init")
    before = snapshot(project.migrations)
    result = project.ok("doctor")
    assert "Nothing to do" in result.stdout and not result.stderr.count("Error"), str(result)
    assert not finding_lines(result, "error") and not finding_lines(result, "warning"), (
        str(result)
    )
    result = project.ok("doctor", "--fix")
    assert snapshot(project.migrations) == before, str(result)


@pytest.mark.parametrize("front", ["flask"])
def test_doctor_fix_single_database_repository(make_project, front):
    """A 2.x single-database folder: notes only (it works as it is, guarantees included), and
    --fix rewrites env.py only (its script.py.mako works), keeps a backup and shows the diff; a
    second run has nothing to do."""
    project = legacy_project(make_project, "single")
    folder = project.migrations
    original = snapshot(folder)

    result = project.db("doctor")
    assert result.returncode == 0, str(result)
    assert finding_lines(result, "warning") == finding_lines(result, "error") == [], str(result)
    notes = finding_lines(result, "note")
    assert any("full env.py" in note and "keeps working" in note for note in notes), str(result)
    assert not error_lines(result), str(result)
    assert snapshot(folder) == original, f"doctor without --fix changed files\n{result}"

    result = project.ok("doctor", "--fix")
    assert (folder / "env.py").read_text(encoding="utf-8") == template("flask", "env.py")
    [backup] = backups(folder, "env.py")
    assert backup.read_bytes() == original["env.py"], str(result)
    assert "--- migrations/env.py (old)" in result.stdout, str(result)
    assert "-fileConfig(config.config_file_name)" in result.stdout, str(result)
    assert "+from flask_migrate.runtime import run_migrations" in result.stdout, str(result)
    assert not backups(folder, "script.py.mako"), str(result)
    after = snapshot(folder)
    for name, content in original.items():
        if name != "env.py":
            assert after[name] == content, f"{name} changed\n{result}"

    result = project.ok("doctor", "--fix")
    assert "Nothing to do" in result.stdout and snapshot(folder) == after, str(result)

    result = project.ok("upgrade", env=V2)
    assert versions(project.url) == {SINGLE[1]}, str(result)
    result = project.ok("migrate", "-m", "nothing", env=V2)
    assert len(project.revision_files()) == 2, str(result)


@pytest.mark.parametrize("front", ["script"])
def test_doctor_fix_multi_database_repository(make_project, front):
    """A 2.x multi-database folder: notes only (on Flask-SQLAlchemy 3, that its bind filter is
    kept working), 2.x's script.py.mako among them; after --fix, autogenerate is right for
    every database and a bind added later works with the old revisions."""
    project = legacy_project(make_project, "multidb")
    folder = project.migrations
    urls = urls_of(project, "multidb")
    original = snapshot(folder)

    result = project.db("doctor")
    assert result.returncode == 0, str(result)
    assert finding_lines(result, "error") == finding_lines(result, "warning") == [], str(result)
    notes = finding_lines(result, "note")
    if STACK == "modern":
        assert any("info['bind_key']" in line for line in notes), str(result)
    assert any("script.py.mako" in line for line in notes), str(result)

    result = project.ok("doctor", "--fix")
    assert (folder / "env.py").read_text(encoding="utf-8") == template("flask-multidb", "env.py")
    script = (folder / "script.py.mako").read_text(encoding="utf-8")
    assert script == template("flask-multidb", "script.py.mako"), str(result)
    assert [path.read_bytes() for path in backups(folder, "env.py")] == [original["env.py"]]
    assert [path.read_bytes() for path in backups(folder, "script.py.mako")] == [
        original["script.py.mako"]
    ], str(result)
    assert {name: content for name, content in snapshot(folder).items()
            if name.startswith("versions")} == {
        name: content for name, content in original.items() if name.startswith("versions")
    }, str(result)

    project.ok("upgrade", env=V2)
    result = project.ok("migrate", "-m", "nothing", env=V2)
    assert "No changes in schema detected" in result.output, str(result)
    assert len(project.revision_files()) == 2, str(result)

    # A bind the 2.x revisions never heard of: their dispatch would raise KeyError for it.
    audit = sqlite_url(project.path / "audit.db")
    with_audit = dict(V2, AUDIT_URL=audit)
    result = project.ok("upgrade", env=with_audit)
    assert versions(audit) == {MULTI[1]} and tables(audit) == {"alembic_version"}, str(result)
    existing = set(project.revision_files())
    result = project.ok("migrate", "-m", "audit", env=with_audit)
    [new] = set(project.revision_files()) - existing
    _, _, functions = read_revision(new)
    assert "op.create_table('audit_entry'" in functions["upgrade_audit"], str(result)
    for name in ("", "users", "logs"):
        assert "op." not in functions[f"upgrade_{name}"], str(result)
    result = project.ok("upgrade", env=with_audit)
    assert "audit_entry" in tables(audit), str(result)
    result = project.ok("downgrade", "base", env=with_audit)
    for url in [*urls.values(), audit]:
        assert tables(url) == {"alembic_version"} and versions(url) == set(), f"{url}\n{result}"


@pytest.mark.parametrize("front", ["flask"])
def test_doctor_reports_what_cannot_work(make_project, front):
    """One folder with several problems; each is named, with its file and remedy.  --fix
    rewrites env.py and script.py.mako and leaves the rest, reported, for the user."""
    project = legacy_project(make_project, "multidb", AUDIT_URL="sqlite:///audit.db")
    folder = project.migrations
    ini = folder / "alembic.ini"
    ini.write_text(ini.read_text(encoding="utf-8").split("# Read by logging")[0],
                   encoding="utf-8")
    broken = folder / "versions" / "0000broken_oops.py"
    broken.write_text(
        '"""oops"""\nrevision = "0000broken"\ndown_revision = None\nraise_me_please()\n',
        encoding="utf-8",
    )
    result = project.db("doctor")
    assert result.returncode == 1, str(result)
    errors = "\n".join(finding_lines(result, "error"))
    assert "alembic.ini has no [loggers], [handlers] and [formatters]" in errors, str(result)
    assert "versions/0000broken_oops.py: it fails when imported (NameError" in errors, (
        str(result)
    )
    assert "info['bind_key']" not in errors and "audit" not in errors, str(result)
    notes = "\n".join(finding_lines(result, "note"))
    assert "the bind 'audit' appears in no revision yet" in notes, str(result)
    [error] = error_lines(result)
    assert "'db doctor --fix'" in error and "see the report above for the rest" in error, (
        str(result)
    )

    # Without the broken file the history has two heads.
    broken.write_text(
        '"""second root"""\nrevision = "0000second"\ndown_revision = None\n'
        'branch_labels = ("other",)\n\n\ndef upgrade(engine_name):\n    pass\n\n\n'
        'def downgrade(engine_name):\n    pass\n',
        encoding="utf-8",
    )
    result = project.db("doctor", "--fix")
    assert result.returncode == 1, str(result)
    after = " ".join(result.stdout.split("After the rewrite:")[1].split())
    assert "2 heads" in after and "'db merge heads'" in after, str(result)
    assert "KeyError" not in after and "formatters" not in after, str(result)
    assert "info['bind_key']" not in after, str(result)
    [error] = error_lines(result)
    assert "see the report above" in error and "--fix" not in error, str(result)


# --- convert-multidb -----------------------------------------------------------------------------


def test_convert_single_to_multi_database(make_project, front):
    """A single-database app migrates, grows a bind, converts; the old revision keeps applying
    to the default database only, the bind gets its own history; down to base again."""
    project = make_project("growbind")
    main, users = project.url, project.env["USERS_URL"]
    with_users = {"WITH_USERS": "1"}
    project.ok("init")
    project.ok("migrate", "-m", "items")
    project.ok("upgrade")
    [first] = project.revision_files()
    rev1, _, functions = read_revision(first)
    assert "op.create_table('item'" in functions["upgrade"], functions
    old_revision = first.read_bytes()

    result = project.ok("convert-multidb", env=with_users)
    folder = project.migrations
    assert (folder / "env.py").read_text(encoding="utf-8") == template("flask-multidb", "env.py")
    assert (folder / "script.py.mako").read_text(encoding="utf-8") == template(
        "flask-multidb", "script.py.mako"
    ), str(result)
    assert (folder / "README").read_text(encoding="utf-8") == template("flask-multidb", "README")
    assert [p.read_text(encoding="utf-8") for p in backups(folder, "env.py")] == [
        template("flask", "env.py")
    ], str(result)
    assert len(backups(folder, "script.py.mako")) == 1, str(result)
    assert first.read_bytes() == old_revision and project.revision_files() == [first]
    assert "+    multidb=True," in result.stdout and "'db upgrade'" in result.stdout, str(result)
    assert not Path(users[len("sqlite:///"):]).exists() or tables(users) == set(), (
        f"convert-multidb without --stamp-binds touched the bind\n{result}"
    )

    result = project.ok("upgrade", env=with_users)
    assert versions(users) == {rev1} and tables(users) == {"alembic_version"}, str(result)
    assert versions(main) == {rev1} and "item" in tables(main), str(result)

    result = project.ok("migrate", "-m", "accounts", env=with_users)
    [second] = [path for path in project.revision_files() if path != first]
    rev2, down, functions = read_revision(second)
    assert down == rev1, str(result)
    assert "op.create_table('account'" in functions["upgrade_users"], str(result)
    assert "op." not in functions["upgrade_"], str(result)

    result = project.ok("upgrade", env=with_users)
    assert tables(users) == {"account", "alembic_version"}, str(result)
    assert versions(users) == versions(main) == {rev2}, str(result)

    result = project.ok("downgrade", env=with_users)
    assert tables(users) == {"alembic_version"} and versions(users) == {rev1}, str(result)
    assert "item" in tables(main) and versions(main) == {rev1}, str(result)

    result = project.ok("downgrade", "base", env=with_users)
    assert tables(main) == {"alembic_version"} and versions(main) == set(), str(result)
    assert versions(users) == set(), str(result)

    before = snapshot(folder)
    result = project.ok("convert-multidb", env=with_users)
    assert "already a multi-database folder" in result.stdout, str(result)
    assert snapshot(folder) == before, str(result)


@pytest.mark.parametrize("front", ["script"])
def test_convert_with_stamp_binds(make_project, front):
    """--stamp-binds records the head in the bind at once, so 'migrate' can follow directly;
    a bind on the default database itself is refused before anything changes."""
    project = make_project("growbind")
    users = project.env["USERS_URL"]
    project.ok("init")
    project.ok("migrate", "-m", "items")
    project.ok("upgrade")
    [first] = project.revision_files()
    rev1, _, _ = read_revision(first)

    before = snapshot(project.migrations)
    result = project.db("convert-multidb", env={"WITH_USERS": "1", "USERS_URL": project.url})
    assert result.returncode == 1, str(result)
    [error] = error_lines(result)
    assert "the bind 'users' is the default database" in error, str(result)
    assert snapshot(project.migrations) == before, str(result)

    result = project.ok("convert-multidb", "--stamp-binds", env={"WITH_USERS": "1"})
    assert versions(users) == {rev1} and tables(users) == {"alembic_version"}, str(result)
    assert f"Recorded {rev1} in the bind 'users'" in result.stdout, str(result)
    result = project.ok("migrate", "-m", "accounts", env={"WITH_USERS": "1"})
    [second] = [path for path in project.revision_files() if path != first]
    _, _, functions = read_revision(second)
    assert "op.create_table('account'" in functions["upgrade_users"], str(result)


# --- In-process: recognising env.py files, and the compatibility they rely on -------------------


@pytest.mark.parametrize("name", ["flask", "flask-multidb", "aioflask", "aioflask-multidb"])
def test_stock_templates_are_recognised_as_thin(name):
    env = folder.analyse_env(template(name, "env.py"))
    assert env.thin and env.syntax_error is None and env.own_code == ()
    assert env.multidb == name.endswith("multidb")
    assert env.asynchronous == name.startswith("aio")
    assert env.template == name


def test_legacy_env_py_constructs_are_recognised():
    single = folder.analyse_env((REPOS / "single" / "env.py").read_text(encoding="utf-8"))
    assert not single.thin and not single.multidb and single.template == "flask"
    assert {"file_config", "str_url", "cmd_opts_autogenerate"} <= single.constructs
    assert "bind_key_filter" not in single.constructs and single.own_code == ()

    multi = folder.analyse_env((REPOS / "multidb" / "env.py").read_text(encoding="utf-8"))
    assert not multi.thin and multi.multidb and multi.template == "flask-multidb"
    assert {"file_config", "str_url", "get_engine_app", "bind_key_filter", "engine_name"} <= (
        multi.constructs
    )
    assert multi.own_code == ()

    script = (REPOS / "multidb" / "script.py.mako").read_text(encoding="utf-8")
    assert folder.STRICT_DISPATCH.search(script)
    assert not folder.STRICT_DISPATCH.search(template("flask-multidb", "script.py.mako"))


def test_own_code_in_an_old_env_py_is_listed():
    text = (REPOS / "single" / "env.py").read_text(encoding="utf-8")
    text = text.replace(
        "target_metadata=target_metadata,\n            process_revision_directives",
        "target_metadata=target_metadata,\n            include_object=include_object,\n"
        "            compare_server_default=True,\n            process_revision_directives",
    )
    text = text.replace(
        "def run_migrations_offline",
        "def include_object(object, name, type_, reflected, compare_to):\n"
        "    return name != 'spatial_ref_sys'\n\n\ndef run_migrations_offline",
    )
    env = folder.analyse_env(text)
    assert [item.split(" (")[0] for item in env.own_code] == [
        "include_object()", "configure(include_object=...)",
        "configure(compare_server_default=...)",
    ]


def _fsa_app(tmp_path: Path, database_url: str) -> tuple[object, object]:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    app.config["SQLALCHEMY_BINDS"] = {"users": sqlite_url(tmp_path / "users.db")}
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    db = SQLAlchemy(app)
    flask_migrate.Migrate(app, db)
    return app, db


@pytest.mark.skipif(STACK != "modern", reason="Flask-SQLAlchemy 2 takes get_engine(app, bind)")
def test_database_view_takes_the_2x_get_engine_call(tmp_path):
    app, db = _fsa_app(tmp_path, sqlite_url(tmp_path / "app.db"))
    view = compat.DatabaseView(db)
    with app.app_context():
        users = db.engines["users"]
        assert view.get_engine(app, "users") is users
        assert view.get_engine(app, bind="users") is users
        assert view.get_engine("users") is users
        assert view.get_engine(bind="users") is users
        assert view.get_engine() is db.engines[None] is view.engine
        assert view.metadatas is db.metadatas and view == db
        with pytest.raises(flask_migrate.MigrateError, match="bind 'nope'"):
            view.get_engine(app, "nope")


def test_real_url_behind_a_masked_password(tmp_path):
    url = "postgresql://fm:p%40ss%25word@127.0.0.1:5/app"
    app, db = _fsa_app(tmp_path, url)
    real = sa.engine.make_url(url).render_as_string(hide_password=False).replace("%", "%%")
    masked = sa.engine.make_url(url).render_as_string(hide_password=True)
    with app.app_context():
        assert compat.resolve_url(masked.replace("%", "%%")) == real
        assert compat.resolve_url(masked) == real
        assert compat.resolve_url("sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"
        other = "postgresql://fm:***@127.0.0.1:5/other"
        assert compat.resolve_url(other) == other
    assert compat.resolve_url(masked) == masked  # no application: nothing to look up
    assert db is not None


def test_run_per_database_adapts_old_revisions():
    from flask_migrate.runtime.revisions import run_per_database

    calls = []

    class Module:
        pass

    plain, strict = Module(), Module()
    plain.upgrade = lambda: calls.append("plain")
    plain.downgrade = lambda: calls.append("plain down")
    strict.upgrade = lambda engine_name: globals_of_strict[f"upgrade_{engine_name}"]()
    strict.downgrade = lambda engine_name: None
    strict.upgrade_ = lambda: calls.append("strict default")
    strict.upgrade_users = lambda: calls.append("strict users")
    globals_of_strict = vars(strict)

    class Script:
        def __init__(self, module):
            self.module = module

    class Directory:
        def walk_revisions(self):
            return [Script(plain), Script(strict)]

    run_per_database(Directory())
    run_per_database(Directory())  # a second pass adapts nothing twice
    for name in ("", "users", "audit"):
        plain.upgrade(engine_name=name)
        strict.upgrade(engine_name=name)
    plain.downgrade(engine_name="")
    assert calls == ["plain", "strict default", "strict users", "plain down"]
    assert plain.upgrade.__name__ == "<lambda>"


def test_env_py_kind_is_read_from_the_code_not_its_text():
    """A spaced call, a '#' inside a string and a commented-out import do not fool it."""
    from flask_migrate import compat, folder

    spaced = folder.analyse_env(
        "from flask_migrate.runtime import run_migrations\nrun_migrations (multidb=True)\n"
    )
    assert (spaced.thin, spaced.multidb) == (True, True)
    hashed = folder.analyse_env(
        "from flask_migrate.runtime import run_migrations\nx = '#'\n"
        "run_migrations(multidb=True, asynchronous=True)\n"
    )
    assert (hashed.thin, hashed.multidb, hashed.asynchronous) == (True, True, True)
    commented = folder.analyse_env(
        "# from flask_migrate.runtime import run_migrations\nfrom alembic import context\n"
        "context.run_migrations()\n"
    )
    assert not commented.thin
