"""The applications in ``examples/`` run as their READMEs say, on both stacks.

Each test copies one example into ``tmp_path`` and drives its real command lines in
subprocesses (this interpreter's ``python manage.py ...`` and ``python -m flask ...``), then
reads the resulting SQLite files.  The examples run with ``PYTHONWARNINGS=error``: an example
that makes its user's terminal print warnings is a broken example.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import STACK, Result, sqlite_url, tables, versions

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# Variables of the developer's shell that would change what the examples do.
_SCRUBBED = (
    "FLASK_APP", "FLASK_DB_DIRECTORY", "FLASK_MIGRATE_TRACEBACK", "DATABASE_URL", "SHOP_CONFIG",
    "EDITOR", "VISUAL", "PYTHONWARNINGS",
)


def _environment(warnings_are_errors: bool = True, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if warnings_are_errors:
        env["PYTHONWARNINGS"] = "error"
    env.update(extra)
    return env


class Example:
    """A copy of ``examples/<name>`` in its own folder."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        shutil.copytree(
            EXAMPLES / name, path, ignore=shutil.ignore_patterns("__pycache__", "migrations", "*.db")
        )

    def run(self, *args: str, **env: str) -> Result:
        """Run ``python ARGS`` in the copy; ``flask ...`` becomes ``python -m flask ...``."""
        if args[0] == "flask":
            args = ("-m", *args)
        command = [sys.executable, *args]
        completed = subprocess.run(
            command, cwd=self.path, env=_environment(**env), capture_output=True, text=True,
            timeout=120,
        )
        return Result(command, completed.returncode, completed.stdout, completed.stderr)

    def ok(self, *args: str, **env: str) -> Result:
        result = self.run(*args, **env)
        assert result.returncode == 0, str(result)
        return result

    def db_url(self, filename: str) -> str:
        return sqlite_url(self.path / filename)

    def revisions(self) -> list[Path]:
        return sorted((self.path / "migrations" / "versions").glob("*.py"))

    def only_revision(self) -> tuple[str, str]:
        """The id and the text of the one revision file."""
        files = self.revisions()
        assert len(files) == 1, files
        text = files[0].read_text()
        match = re.search(r"^revision = ['\"](\w+)['\"]", text, re.MULTILINE)
        assert match, text
        return match.group(1), text


def _rows(path: Path, table: str) -> list[tuple]:
    with sqlite3.connect(path) as connection:
        return connection.execute(f'SELECT * FROM "{table}" ORDER BY 1').fetchall()


def test_classic(tmp_path: Path) -> None:
    app = Example("classic", tmp_path / "classic")
    database = app.db_url("app.db")

    app.ok("manage.py", "db", "init")
    assert (app.path / "migrations" / "env.py").is_file()
    app.ok("manage.py", "db", "migrate", "-m", "initial")
    revision, text = app.only_revision()
    assert "create_table('author'" in text and "create_table('note'" in text, text
    assert not {"author", "note"} & tables(database)  # migrate only writes the revision

    app.ok("manage.py", "db", "upgrade")
    assert tables(database) == {"author", "note", "alembic_version"}
    assert versions(database) == {revision}
    app.ok("manage.py", "db", "check")  # the models and the migrations agree

    # The example's own command, through Flask-Script's @manager.option.
    result = app.ok("manage.py", "note", "-a", "Ada", "-t", "first note")
    assert "Ada: first note" in result.stdout, str(result)
    assert _rows(app.path / "app.db", "note") == [(1, 1, "first note")]

    # The same application through Flask's own CLI.
    result = app.ok("flask", "db", "current", FLASK_APP="app.py")
    assert f"{revision} (head)" in result.stdout, str(result)
    result = app.ok("flask", "db", "history", FLASK_APP="app.py")
    assert f"<base> -> {revision} (head), initial" in result.stdout, str(result)

    app.ok("manage.py", "db", "downgrade")
    assert tables(database) == {"alembic_version"}
    assert versions(database) == set()

    # DATABASE_URL moves the application to another database; app.db is left alone.
    other = tmp_path / "elsewhere.db"
    app.ok("manage.py", "db", "upgrade", DATABASE_URL=sqlite_url(other))
    assert tables(sqlite_url(other)) == {"author", "note", "alembic_version"}
    assert tables(database) == {"alembic_version"}


def test_factory(tmp_path: Path) -> None:
    app = Example("factory", tmp_path / "factory")
    dev, test = app.db_url("dev.db"), app.db_url("test.db")
    schema = {"product", "purchase", "alembic_version"}

    app.ok("manage.py", "db", "init")
    app.ok("manage.py", "db", "migrate", "-m", "initial")
    revision, text = app.only_revision()
    assert "create_table('product'" in text and "create_table('purchase'" in text, text

    # Without -c the factory builds the development configuration.
    app.ok("manage.py", "db", "upgrade")
    assert tables(dev) == schema
    assert not (app.path / "test.db").exists()

    # -c/--config reaches create_app(config_name=...).
    app.ok("manage.py", "-c", "testing", "db", "upgrade")
    assert tables(test) == schema
    assert versions(test) == {revision}
    result = app.ok("manage.py", "--config", "testing", "add", "-n", "Cup", "-p", "300")
    assert "[testing]" in result.stdout and "Cup: 3.00" in result.stdout, str(result)
    assert _rows(app.path / "test.db", "product") == [(1, "Cup", 300)]
    assert _rows(app.path / "dev.db", "product") == []

    app.ok("manage.py", "-c", "testing", "db", "downgrade")
    assert tables(test) == {"alembic_version"}
    assert versions(test) == set()
    assert versions(dev) == {revision}

    # An unknown configuration is a usage error, before anything runs.
    result = app.run("manage.py", "-c", "staging", "db", "upgrade")
    assert result.returncode == 2, str(result)
    assert "invalid choice: 'staging'" in result.stderr, str(result)

    # Flask's CLI finds create_app in the package; SHOP_CONFIG picks the configuration.
    result = app.ok("flask", "db", "current", FLASK_APP="shop")
    assert f"{revision} (head)" in result.stdout, str(result)
    result = app.ok("flask", "db", "current", FLASK_APP="shop", SHOP_CONFIG="testing")
    assert revision not in result.stdout, str(result)
    app.ok("flask", "db", "upgrade", FLASK_APP="shop", SHOP_CONFIG="testing")
    assert versions(test) == {revision}
    if STACK == "modern":  # `flask --app` arrived in Flask 2.2
        result = app.ok("flask", "--app", "shop", "db", "history")
        assert f"<base> -> {revision} (head), initial" in result.stdout, str(result)


def test_multidb(tmp_path: Path) -> None:
    app = Example("multidb", tmp_path / "multidb")
    env = {"FLASK_APP": "app.py"}
    databases = {
        "app.db": {"setting"},
        "users.db": {"user"},
        "logs.db": {"event"},
    }

    app.ok("flask", "db", "init", "--multidb", **env)
    app.ok("flask", "db", "migrate", "-m", "initial", **env)
    revision, text = app.only_revision()
    for function, table in [("upgrade_", "setting"), ("upgrade_users", "user"),
                            ("upgrade_logs", "event")]:
        body = text.split(f"def {function}():", 1)[1].split("\ndef ", 1)[0]
        assert f"create_table('{table}'" in body, text

    app.ok("flask", "db", "upgrade", **env)
    for filename, own_tables in databases.items():
        url = app.db_url(filename)
        assert tables(url) == own_tables | {"alembic_version"}, filename
        assert versions(url) == {revision}, filename
    app.ok("flask", "db", "check", **env)

    result = app.ok("flask", "signup", "ada@example.com", **env)
    assert "1 user(s), 1 event(s)" in result.stdout, str(result)
    assert _rows(app.path / "users.db", "user") == [(1, "ada@example.com")]
    assert _rows(app.path / "logs.db", "event") == [(1, 1, "signed up: ada@example.com")]

    app.ok("flask", "db", "downgrade", **env)
    for filename in databases:
        url = app.db_url(filename)
        assert tables(url) == {"alembic_version"}, filename
        assert versions(url) == set(), filename


def _snapshot(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


def test_run_example_rejects_unknown_example() -> None:
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run-example"), "nosuchapp"],
        env=_environment(), capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 2, completed
    assert "usage:" in completed.stderr, completed


@pytest.mark.skipif(
    STACK != "modern",
    reason="scripts/run-example uses .venv/modern; running it once, from the modern stack, is enough",
)
def test_run_example_script(tmp_path: Path) -> None:
    """The README's first command: examples/classic, from scratch, in a temporary copy."""
    before = _snapshot(EXAMPLES)
    shell_database = tmp_path / "from-the-shell.db"
    start = time.monotonic()
    completed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run-example")],
        cwd=tmp_path,
        # As a user runs it (pip may run too, when the venv is out of date), with a DATABASE_URL
        # in the shell that it must not use.
        env=_environment(
            warnings_are_errors=False, TMPDIR=str(tmp_path),
            DATABASE_URL=sqlite_url(shell_database),
        ),
        capture_output=True, text=True, timeout=600,
    )
    elapsed = time.monotonic() - start
    report = f"exit {completed.returncode} after {elapsed:.1f}s\n{completed.stdout}{completed.stderr}"
    assert completed.returncode == 0, report

    # Every step was shown, in order, before its output.
    shown = [line for line in completed.stdout.splitlines() if line.startswith("$ ")]
    assert shown == [
        "$ python manage.py db init",
        "$ python manage.py db migrate -m initial",
        "$ python manage.py db upgrade",
        "$ python manage.py db current",
        "$ FLASK_APP=app.py flask db history",
        "$ python manage.py note -a Ada -t 'Hello from run-example'",
    ], report
    assert "Ada: Hello from run-example" in completed.stdout, report

    # It says where the copy is, the copy holds the migrated database, and the clone is untouched
    # (DATABASE_URL from the caller's shell was ignored).
    match = re.search(r"copied to (\S+)", completed.stdout)
    assert match, report
    copy = Path(match.group(1))
    assert copy.parent == tmp_path, report
    assert f"ran in {copy}" in completed.stdout, report
    assert tables(sqlite_url(copy / "app.db")) == {"author", "note", "alembic_version"}
    assert len(list((copy / "migrations" / "versions").glob("*.py"))) == 1
    assert not shell_database.exists()
    assert _snapshot(EXAMPLES) == before
