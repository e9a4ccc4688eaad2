"""The Python API, in-process: ``Migrate``, ``@migrate.configure``, the command functions,
``Config``, ``alembic_version`` and ``MigrateCommand``.

Each test builds its own Flask application with a SQLite file under ``tmp_path`` and works
inside ``app.app_context()``; the code is the same for Flask-SQLAlchemy 2.5 (legacy stack) and
3.1 (modern stack).  Failures must raise :class:`flask_migrate.MigrateError`, output must go to
the current ``sys.stdout``, and the application's logging must be left as it was.
"""
from __future__ import annotations

import inspect
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import alembic
import pytest
from alembic.config import Config as AlembicConfig
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_migrate
from flask_migrate import dispatch
from flask_migrate import (
    ChangesDetected,
    Config,
    Migrate,
    MigrateError,
    check,
    current,
    downgrade,
    heads,
    history,
    init,
    migrate,
    revision,
    stamp,
    upgrade,
)
from tests.conftest import STACK, sqlite_url, tables, versions

TEMPLATES = Path(flask_migrate.__file__).parent / "templates"
STOCK_TEMPLATES = ("flask", "flask-multidb", "aioflask", "aioflask-multidb")


def make_app(tmp_path: Path, binds: dict[str, str] | None = None) -> tuple[Flask, SQLAlchemy]:
    """A Flask app with one model, ``User``, in the SQLite file ``tmp_path/app.db``, and the
    binds ``binds`` (name -> URL), if any."""
    app = Flask("api_test_app", root_path=str(tmp_path))
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_url(tmp_path / "app.db")
    if binds:
        app.config["SQLALCHEMY_BINDS"] = binds
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    db = SQLAlchemy(app)

    class User(db.Model):
        __tablename__ = "user"
        id = db.Column(db.Integer, primary_key=True)
        name = db.Column(db.String(64))

    return app, db


def add_post_model(db: SQLAlchemy) -> None:
    """A model change for autogenerate to find: a new ``post`` table."""

    class Post(db.Model):
        __tablename__ = "post"
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.String(100))


def _dispose(app: Flask, db: SQLAlchemy) -> None:
    # Close the app's SQLite connections before tmp_path goes away (FSA 3: db.engines;
    # FSA 2: db.get_engine()).
    with app.app_context():
        engines = getattr(db, "engines", None)
        for engine in (engines.values() if engines is not None else [db.get_engine()]):
            engine.dispose()


@pytest.fixture
def app_db(tmp_path):
    """(app, db, migrate, migrations folder), inside an application context."""
    app, db = make_app(tmp_path)
    directory = tmp_path / "migrations"
    migration = Migrate(app, db, directory=str(directory))
    with app.app_context():
        yield app, db, migration, directory
    _dispose(app, db)


@pytest.fixture
def url(tmp_path) -> str:
    return sqlite_url(tmp_path / "app.db")


@pytest.fixture
def one_revision(app_db, capsys):
    """``app_db`` with a migrations folder and one revision, ``aaa111`` (create user), not
    applied; what writing them printed is read away."""
    init()
    migrate(message="create user", rev_id="aaa111")
    capsys.readouterr()
    return app_db


# ---------------------------------------------------------------------------------------------
# Migrate and app.extensions['migrate']
# ---------------------------------------------------------------------------------------------


def test_migrate_record(tmp_path):
    app, db = make_app(tmp_path)
    migration = Migrate(app, db)
    record = app.extensions["migrate"]
    assert record.migrate is migration
    assert record.db is db
    assert record.directory == "migrations"
    assert record.configure_args == {"compare_type": True, "render_as_batch": True}
    assert record.metadata is db.metadata
    assert "db" in app.cli.commands


def test_init_app_arguments(tmp_path):
    app, db = make_app(tmp_path)
    migration = Migrate()
    migration.init_app(
        app, db, directory="custom", compare_type=False, render_as_batch=False, foo=1
    )
    record = app.extensions["migrate"]
    assert record.migrate is migration
    assert record.db is db
    assert record.directory == "custom"
    assert record.configure_args == {"compare_type": False, "render_as_batch": False, "foo": 1}
    assert record.metadata is db.metadata


def test_constructor_arguments_reach_init_app(tmp_path):
    app, db = make_app(tmp_path)
    migration = Migrate(db=db, directory="from_constructor", compare_type=False, foo=2)
    migration.init_app(app)
    record = app.extensions["migrate"]
    assert record.db is db
    assert record.directory == "from_constructor"
    assert record.configure_args == {"compare_type": False, "render_as_batch": True, "foo": 2}


def test_command_name(tmp_path):
    app, db = make_app(tmp_path)
    Migrate(app, db, command="database")
    assert "database" in app.cli.commands
    assert "db" not in app.cli.commands
    runner = app.test_cli_runner()
    result = runner.invoke(args=["database", "--help"])
    assert result.exit_code == 0, result.output
    for name in ("upgrade", "downgrade", "migrate", "init"):
        assert name in result.output
    # The commands run under the new name: list-templates lists the stock templates.
    listed = runner.invoke(args=["database", "list-templates"])
    assert listed.exit_code == 0, listed.output
    assert "flask-multidb" in listed.output and "aioflask" in listed.output, listed.output
    assert runner.invoke(args=["db", "list-templates"]).exit_code != 0


# ---------------------------------------------------------------------------------------------
# @migrate.configure
# ---------------------------------------------------------------------------------------------


def test_configure_callbacks_run_in_order_and_their_result_is_used(app_db, capsys):
    app, db, migration, directory = app_db
    init()
    revision(message="first", rev_id="aaa111")
    capsys.readouterr()
    calls = []
    redirected = io.StringIO()

    @migration.configure
    def first(config):
        assert isinstance(config, AlembicConfig)
        calls.append("first")
        config.set_main_option("flask_migrate_test_marker", "set by first")
        return config

    @migration.configure
    def second(config):
        calls.append(("second", config.get_main_option("flask_migrate_test_marker")))
        # A new object: only if the command uses what callbacks return does output land here.
        replacement = Config(stdout=redirected)
        replacement.set_main_option("script_location", config.get_main_option("script_location"))
        return replacement

    assert first.__name__ == "first"  # the decorator hands the function back
    heads()
    assert calls == ["first", ("second", "set by first")]
    assert "aaa111 (head)" in redirected.getvalue()
    assert "aaa111" not in capsys.readouterr().out


def test_configure_callback_changes_what_env_py_sees(app_db, url):
    """A callback's change to the Config reaches env.py: here, an -x argument env.py reads."""
    app, db, migration, directory = app_db
    init()
    env_py = directory / "env.py"
    env_py.write_text(
        "from alembic import context\n"
        "from flask import current_app\n"
        "current_app.config['SEEN_X'] = context.get_x_argument(as_dictionary=True)\n"
        + env_py.read_text()
    )

    @migration.configure
    def add_x(config):
        config.cmd_opts.x = list(config.cmd_opts.x or []) + ["from=callback"]
        return config

    upgrade()
    assert app.config["SEEN_X"] == {"from": "callback"}


# ---------------------------------------------------------------------------------------------
# The command functions
# ---------------------------------------------------------------------------------------------


def test_list_templates_output_goes_to_current_stdout(capsys):
    flask_migrate.list_templates()
    out = capsys.readouterr().out
    for name in STOCK_TEMPLATES:
        assert name in out


def test_init_says_what_it_created(app_db, capsys):
    app, db, migration, directory = app_db
    init()
    assert (directory / "env.py").is_file()
    out = capsys.readouterr().out
    assert "Created the migrations folder" in out and str(directory) in out


def test_commands_in_process(app_db, url, capsys):
    app, db, migration, directory = app_db
    init()
    assert (directory / "env.py").is_file()

    migrate(message="create user", rev_id="aaa111")
    assert [p.name for p in (directory / "versions").glob("*.py")] == ["aaa111_create_user.py"]
    upgrade()
    assert "user" in tables(url)
    assert versions(url) == {"aaa111"}

    capsys.readouterr()
    current()
    assert "aaa111 (head)" in capsys.readouterr().out
    history()
    out = capsys.readouterr().out
    assert "aaa111" in out and "create user" in out
    heads()
    assert "aaa111 (head)" in capsys.readouterr().out

    downgrade()
    assert versions(url) == set()
    assert "user" not in tables(url)
    stamp()
    assert versions(url) == {"aaa111"}


def test_upgrade_sql_output_is_capturable(one_revision, url, capsys):
    upgrade(sql=True)
    out = capsys.readouterr().out
    assert "CREATE TABLE user" in out
    assert "aaa111" in out
    assert "user" not in tables(url)  # offline: the database is untouched


def test_check_raises_changes_detected(app_db):
    app, db, migration, directory = app_db
    init()
    migrate(message="create user")
    upgrade()
    check()  # no model changes: no exception
    add_post_model(db)
    with pytest.raises(ChangesDetected) as raised:
        check()
    assert isinstance(raised.value, MigrateError)
    assert "post" in str(raised.value)
    assert len(list((directory / "versions").glob("*.py"))) == 1  # check writes nothing


def test_upgrade_without_folder_raises(app_db, url):
    app, db, migration, directory = app_db
    with pytest.raises(MigrateError) as raised:
        upgrade()
    assert str(directory) in str(raised.value)
    assert not directory.exists()
    assert tables(url) == set()


def test_init_twice_raises(app_db):
    app, db, migration, directory = app_db
    init()
    before = sorted(p.name for p in directory.iterdir())
    with pytest.raises(MigrateError) as raised:
        init()
    assert str(directory) in str(raised.value)
    assert sorted(p.name for p in directory.iterdir()) == before


def test_unknown_revision_raises(one_revision, url):
    with pytest.raises(MigrateError) as raised:
        upgrade(revision="nosuch")
    assert "nosuch" in str(raised.value)
    assert versions(url) == set()


def test_unknown_template_raises(app_db):
    app, db, migration, directory = app_db
    with pytest.raises(MigrateError) as raised:
        init(template="no-such-template")
    assert "no-such-template" in str(raised.value)
    assert not directory.exists()


# ---------------------------------------------------------------------------------------------
# Reports: returned as data, printed by the command line only
# ---------------------------------------------------------------------------------------------


def rendered(result) -> str:
    """What the command line prints for ``result``."""
    out = io.StringIO()
    result.render(out)
    return out.getvalue()


def test_status_returns_the_report_and_prints_nothing(one_revision, url, capsys):
    report = flask_migrate.status()

    assert capsys.readouterr().out == ""
    assert isinstance(report, dispatch.Result)
    assert (report.exit_code, report.up_to_date, report.error) == (3, False, None)
    [state] = report
    assert (state.name, state.current, state.heads) == ("default", (), ("aaa111",))
    assert [(step.revision, step.message, step.upgrade) for step in state.steps] == [
        ("aaa111", "create user", True)]
    assert "1 revision to apply" in rendered(report)

    upgrade()
    report = flask_migrate.status()
    assert (report.exit_code, report.up_to_date, report[0].current) == (0, True, ("aaa111",))
    assert "  status:  up to date" in rendered(report).splitlines()


def test_upgrade_plan_returns_the_steps_runs_none_and_prints_nothing(one_revision, url, capsys):
    plan = upgrade(plan=True)

    assert capsys.readouterr().out == ""
    assert versions(url) == set()  # nothing applied
    assert (plan.upgrade, plan.exit_code, len(plan)) == (True, 0, 1)
    assert [step.revision for step in plan[0].steps] == ["aaa111"]
    assert rendered(plan).splitlines() == [
        "Database default: 1 revision to apply, in order, from base (empty):",
        "    + aaa111  create user",
    ]
    upgrade()
    plan = downgrade(plan=True)
    assert (plan.upgrade, [step.upgrade for step in plan[0].steps]) == (False, [False])
    assert versions(url) == {"aaa111"}


def test_doctor_returns_the_diagnosis_and_prints_nothing(app_db, capsys):
    app, db, migration, directory = app_db
    init()
    capsys.readouterr()

    diagnosis = flask_migrate.doctor()

    assert capsys.readouterr().out == ""
    assert isinstance(diagnosis, dispatch.Result)
    assert (diagnosis.exit_code, diagnosis.error, diagnosis.problems) == (0, None, [])
    assert dict(diagnosis.facts)["env.py"].startswith("thin")
    assert "Nothing to do" in rendered(diagnosis)

    (directory / "script.py.mako").unlink()
    diagnosis = flask_migrate.doctor()  # findings are data: no exception
    assert capsys.readouterr().out == ""
    assert diagnosis.ids == ["script-missing"]
    [finding] = diagnosis.findings
    assert (finding.severity, finding.subject, finding.fixable) == ("error", "script.py.mako",
                                                                     True)
    assert "doctor --fix" in finding.remedy
    assert diagnosis.exit_code == 1 and "doctor --fix" in diagnosis.error
    assert diagnosis.repair is None


def test_doctor_fix_returns_what_it_rewrote_and_prints_nothing(app_db, capsys):
    app, db, migration, directory = app_db
    init()
    (directory / "env.py").write_text("")
    capsys.readouterr()

    diagnosis = flask_migrate.doctor(fix=True)

    assert capsys.readouterr().out == ""
    assert [finding.id for finding in diagnosis.findings] == ["env-empty"]  # as it was
    assert diagnosis.remaining == [] and diagnosis.exit_code == 0
    [rewrite] = diagnosis.repair.rewritten.files
    assert rewrite.path == str(directory / "env.py")
    assert Path(rewrite.backup).read_text() == ""
    assert "+from flask_migrate.runtime import run_migrations" in rewrite.diff
    assert "run_migrations" in (directory / "env.py").read_text()
    text = rendered(diagnosis)
    assert "Rewriting with the flask template:" in text and "Nothing left to do" in text


def test_lint_returns_the_findings_and_prints_nothing(one_revision, capsys):
    report = flask_migrate.lint()

    assert capsys.readouterr().out == ""
    assert isinstance(report, dispatch.Result)
    assert (list(report), report.revisions, report.exit_code) == ([], 1, 0)
    assert rendered(report) == "Checked 1 revision for sqlite: no findings.\n"


def test_test_returns_the_report_and_prints_nothing(one_revision, url, capsys):
    report = flask_migrate.test()

    assert capsys.readouterr().out == ""
    assert isinstance(report, dispatch.Result)
    assert report.passed and report.exit_code == 0, report.lines()
    assert [outcome.test for outcome in report][:2] == ["single head",
                                                         "upgrade from base to head"]
    assert rendered(report).splitlines()[-1] == f"all {len(report)} passed"
    assert versions(url) == set()  # the application's database was not touched


def test_migrate_returns_the_new_revision_and_its_findings(app_db, url, capsys):
    app, db, migration, directory = app_db
    init()
    capsys.readouterr()

    written = migrate(message="create user", rev_id="aaa111")

    assert "db lint finds" not in capsys.readouterr().out
    assert isinstance(written, dispatch.Result)
    [new] = written.revisions
    assert (new.revision, new.message) == ("aaa111", "create user")
    assert new.path == str(directory / "versions" / "aaa111_create_user.py")
    assert (list(written.findings), written.findings.revisions) == ([], 1)
    assert (written.not_linted, written.exit_code, written.error) == (None, 0, None)
    assert rendered(written) == ""

    # A table the models do not have: autogenerate drops it, which lint calls an error.
    upgrade()
    with sqlite3.connect(tmp_path_of(url)) as connection:
        connection.execute("CREATE TABLE legacy (id INTEGER PRIMARY KEY)")
    written = migrate(message="drop legacy", rev_id="bbb222")
    assert "db lint finds" not in capsys.readouterr().out
    [new] = written.revisions
    [finding] = written.findings
    assert (finding.rule, finding.severity, finding.revision, finding.path) == (
        "drop-table", "error", "bbb222", new.path)
    assert written.exit_code == 0  # the revision is written: the user's to review
    lines = rendered(written).splitlines()
    assert lines[0] == "db lint finds, in the new revision:"
    assert lines[1].endswith("error drop-table: revision bbb222 drops table legacy")
    assert lines[-1].startswith("Fix the revision, or accept a finding with a marker")

    upgrade()
    written = migrate(message="nothing")  # no change: no file, nothing to lint
    assert (written.revisions, written.findings, rendered(written)) == ((), None, "")
    assert len(list((directory / "versions").glob("*.py"))) == 2


def tmp_path_of(url: str) -> str:
    """The file of a ``sqlite:///`` URL."""
    return url[len("sqlite:///"):]


@pytest.fixture
def app_with_bind(tmp_path):
    """(app, folder, URL of the bind 'users'): an application whose single-database folder
    has one revision, applied, and which has grown a bind since; in an application context."""
    users_url = sqlite_url(tmp_path / "users.db")
    app, db = make_app(tmp_path, binds={"users": users_url})
    directory = tmp_path / "migrations"
    Migrate(app, db, directory=str(directory))
    with app.app_context():
        init()
        revision(message="users", rev_id="aaa111")
        upgrade()
        yield app, directory, users_url
    _dispose(app, db)


def test_convert_multidb_returns_what_it_did_and_prints_nothing(app_with_bind, capsys):
    app, directory, users_url = app_with_bind
    old_env = (directory / "env.py").read_text()
    capsys.readouterr()

    conversion = flask_migrate.convert_multidb(stamp_binds=True)

    assert capsys.readouterr().out == ""
    assert isinstance(conversion, dispatch.Result)
    assert (conversion.folder, conversion.template, conversion.binds) == (
        str(directory), "flask-multidb", ("users",))
    assert (conversion.converted, conversion.exit_code, conversion.error) == (True, 0, None)
    assert [Path(rewrite.path).name for rewrite in conversion.rewritten.files] == [
        "env.py", "script.py.mako"]
    [env, _] = conversion.rewritten.files
    assert Path(env.backup).read_text() == old_env
    assert "+    multidb=True," in env.diff
    assert (directory / "env.py").read_text() == (TEMPLATES / "flask-multidb" / "env.py"
                                                  ).read_text()
    assert conversion.readme_replaced and conversion.lost_code == ()
    [stamped] = conversion.stamped
    assert (stamped.bind, stamped.heads, stamped.already) == ("users", ("aaa111",), False)
    assert versions(users_url) == {"aaa111"}
    lines = rendered(conversion).splitlines()
    assert lines[0] == (f"Converting {os.path.relpath(directory)} to the flask-multidb template "
                        "(versions/ is kept as it is):")
    assert f"Recorded aaa111 in the bind 'users' ({users_url})." in lines
    assert lines[-1] == "Next: 'db migrate' writes a revision for the tables of the binds."

    again = flask_migrate.convert_multidb()
    assert (again.converted, again.template, again.rewritten, again.exit_code) == (
        False, None, None, 0)
    assert rendered(again) == (f"{os.path.relpath(directory)} is already a multi-database "
                               "folder: nothing to do.\n")


def test_convert_multidb_says_which_bind_it_could_not_stamp(app_with_bind):
    """The folder is converted all the same: the failure is the result's error, not raised."""
    app, directory, users_url = app_with_bind
    Path(tmp_path_of(users_url)).write_bytes(b"not a database, " * 100)

    conversion = flask_migrate.convert_multidb(stamp_binds=True)

    assert conversion.converted and conversion.stamped == ()
    assert conversion.exit_code == 1
    assert "cannot record the head revision in the bind 'users'" in conversion.error
    assert "the folder was converted" in conversion.error
    assert "run_migrations" in (directory / "env.py").read_text()
    assert "Next:" not in rendered(conversion)


def test_list_templates_has_no_parameter_as_in_flask_migrate_41():
    assert list(inspect.signature(flask_migrate.list_templates).parameters) == []


# Parameter order of Flask-Migrate 4.1's API, which positional calls rely on.
FLASK_MIGRATE_41_ORDER = {
    "init": ["directory", "multidb", "template", "package"],
    "revision": ["directory", "message", "autogenerate", "sql", "head", "splice",
                 "branch_label", "version_path", "rev_id"],
    "migrate": ["directory", "message", "sql", "head", "splice", "branch_label",
                "version_path", "rev_id", "x_arg"],
    "edit": ["directory", "revision"],
    "merge": ["directory", "revisions", "message", "branch_label", "rev_id"],
    "upgrade": ["directory", "revision", "sql", "tag", "x_arg"],
    "downgrade": ["directory", "revision", "sql", "tag", "x_arg"],
    "show": ["directory", "revision"],
    "history": ["directory", "rev_range", "verbose", "indicate_current"],
    "heads": ["directory", "verbose", "resolve_dependencies"],
    "branches": ["directory", "verbose"],
    "current": ["directory", "verbose"],
    "stamp": ["directory", "revision", "sql", "tag", "purge"],
    "check": ["directory"],
}


@pytest.mark.parametrize("name", FLASK_MIGRATE_41_ORDER)
def test_parameter_order_of_flask_migrate_41(name):
    parameters = list(inspect.signature(getattr(flask_migrate, name)).parameters)
    expected = FLASK_MIGRATE_41_ORDER[name]
    assert parameters[:len(expected)] == expected


def test_positional_calls(tmp_path, url):
    """Calls written for Flask-Migrate 4.1, with the folder and revision given positionally."""
    app, db = make_app(tmp_path)
    Migrate(app, db, directory=str(tmp_path / "not-this-one"))
    folder = str(tmp_path / "positional")
    try:
        with app.app_context():
            init(folder)
            migrate(folder, "create user", False, "head", False, None, None, "aaa111")
            upgrade(folder, "head")
            assert versions(url) == {"aaa111"}
            downgrade(folder, "base")
            assert versions(url) == set()
            assert "user" not in tables(url)
            stamp(folder, "head")
            assert versions(url) == {"aaa111"}
    finally:
        _dispose(app, db)
    assert (tmp_path / "positional" / "versions" / "aaa111_create_user.py").is_file()
    assert not (tmp_path / "not-this-one").exists()


# ---------------------------------------------------------------------------------------------
# Logging is left alone
# ---------------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _logger_state(logger: logging.Logger) -> tuple:
    return (logger.level, logger.propagate, list(logger.handlers), logger.disabled)


def test_logging_left_alone(app_db):
    app, db, migration, directory = app_db
    root = logging.getLogger()
    root_handler = _Records()
    app_handler = _Records()
    myapp = logging.getLogger("myapp")
    # Loggers the application (or its libraries) created before any migration runs.
    existing = [myapp, logging.getLogger("sqlalchemy"), logging.getLogger("werkzeug"),
                logging.getLogger("myapp.models"), app.logger]
    saved_level = root.level
    myapp.setLevel(logging.INFO)
    myapp.addHandler(app_handler)
    root.addHandler(root_handler)
    try:
        root.setLevel(logging.WARNING)
        before_root = (root.level, list(root.handlers))
        before = {logger.name: _logger_state(logger) for logger in existing}

        init()
        migrate(message="create user")
        upgrade()
        add_post_model(db)
        migrate(message="add post")
        upgrade()
        downgrade()

        disabled = sorted(
            name for name, logger in logging.Logger.manager.loggerDict.items()
            if isinstance(logger, logging.Logger) and logger.disabled
        )
        assert disabled == []
        assert (root.level, list(root.handlers)) == before_root
        assert {logger.name: _logger_state(logger) for logger in existing} == before

        logging.getLogger("myapp.models").info("still here")
        assert [r.getMessage() for r in app_handler.records] == ["still here"]
        logging.getLogger("sqlalchemy").warning("sqlalchemy too")
        assert "sqlalchemy too" in [r.getMessage() for r in root_handler.records]
    finally:
        myapp.removeHandler(app_handler)
        myapp.setLevel(logging.NOTSET)
        root.removeHandler(root_handler)
        root.setLevel(saved_level)


# ---------------------------------------------------------------------------------------------
# Config and alembic_version
# ---------------------------------------------------------------------------------------------


def test_config_template_directory(tmp_path):
    config = Config()
    assert isinstance(config, AlembicConfig)
    assert Path(config.get_template_directory()) == TEMPLATES
    assert {p.name for p in TEMPLATES.iterdir() if p.is_dir()} >= set(STOCK_TEMPLATES)
    custom = Config(template_directory=str(tmp_path))
    assert custom.get_template_directory() == str(tmp_path)


def test_init_with_custom_template_folder(app_db, tmp_path):
    app, db, migration, directory = app_db
    custom = tmp_path / "templates" / "mine"
    shutil.copytree(TEMPLATES / "flask", custom)
    (custom / "README").write_text("My own template.\n")
    init(template=str(custom))
    assert (directory / "README").read_text() == "My own template.\n"
    assert (directory / "env.py").read_text() == (custom / "env.py").read_text()


def test_alembic_version():
    version = flask_migrate.alembic_version
    assert isinstance(version, tuple)
    assert all(isinstance(part, int) for part in version)
    assert version == tuple(int(part) for part in alembic.__version__.split(".")[:3])
    assert version >= (1, 19)


# ---------------------------------------------------------------------------------------------
# MigrateCommand
# ---------------------------------------------------------------------------------------------


def _python(code: str) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
        timeout=60, cwd=Path(__file__).parent.parent,
        env={k: v for k, v in os.environ.items() if not k.startswith("FLASK_")},
    )
    assert completed.returncode == 0, completed.stderr
    return completed


def test_migrate_command_is_built_lazily_from_the_installed_flavour():
    completed = _python(
        """
        import json, sys
        import flask_migrate
        before = sorted(m for m in ("flask_script", "flask_script_ng") if m in sys.modules)
        manager = flask_migrate.MigrateCommand
        flavour = type(manager).__mro__[1].__module__.split(".")[0]
        script = sys.modules[flavour]
        print(json.dumps({
            "before": before,
            "flavour": flavour,
            "is_manager": isinstance(manager, script.Manager),
            "commands": sorted(manager._commands),
            "same": flask_migrate.MigrateCommand is manager,
        }))
        """
    )
    found = json.loads(completed.stdout)
    assert found["before"] == []
    assert found["flavour"] == ("flask_script" if STACK == "legacy" else "flask_script_ng")
    assert found["is_manager"]
    assert found["same"]
    from flask_migrate import spec

    assert set(found["commands"]) >= {command.name for command in spec.command_specs()}


def test_migrate_command_without_flask_script_raises_import_error():
    completed = _python(
        """
        import sys
        sys.modules["flask_script"] = None
        sys.modules["flask_script_ng"] = None
        import flask_migrate  # importing still works
        try:
            flask_migrate.MigrateCommand
        except ImportError as error:
            print("attribute:", error)
        try:
            from flask_migrate import MigrateCommand
        except ImportError as error:
            print("from-import:", error)
        """
    )
    lines = completed.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["attribute", "from-import"], completed
    for line in lines:
        assert "Flask-Script-NG" in line
