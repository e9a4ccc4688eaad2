"""Regenerate the generated parts of the legacy repositories, on the legacy stack.

``tests/legacy_repos/<repo>/`` holds a migrations folder in the shape Flask-Migrate 2.x wrote:
its env.py, script.py.mako, alembic.ini and README are written by hand; its revision files
(``versions/``) and the database states (``states/``) are what the legacy stack (Flask 1.1,
Flask-SQLAlchemy 2.5, SQLAlchemy 1.4, Flask-Script 2.0.6) produced from them::

    .venv/legacy/bin/python tests/legacy_repos/build.py

runs, for each repository, ``manage.py db migrate`` and ``db upgrade`` at model version 1
(tests/apps/single, tests/apps/legacymulti), dumps the SQLite databases at that point
(``states/<repo>-<database>-sqlite.sql``), writes the second revision at model version 2, and
writes the PostgreSQL state as the offline SQL of an upgrade to the first revision
(``states/<repo>-<database>-postgresql.sql``).  ``tests/test_legacy.py`` checks on the legacy
stack that this still reproduces the committed files.
"""
from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
APPS = HERE.parent / "apps"

#: Repository -> (test app, [(model version, message, revision id)], first revision).
REPOS = {
    "single": ("single", [
        ("1", "create user table", "3f2a9c81d4e7"),
        ("2", "add email to user", "8b61e05a7c2d"),
    ]),
    "multidb": ("legacymulti", [
        ("1", "create the tables of every database", "5d0e7a3b9f14"),
        ("2", "add a column in every database", "c47b2e96a0d8"),
    ]),
}
#: Database name ("default" for the default one) -> the variable holding its URL.
URL_VARIABLES = {"default": "DATABASE_URL", "users": "USERS_URL", "logs": "LOGS_URL"}
#: Only used to render offline SQL: nothing connects to it.
OFFLINE_POSTGRESQL = "postgresql://legacy:offline@localhost/legacy_{name}"
HAND_WRITTEN = ("env.py", "script.py.mako", "alembic.ini", "README")
_CREATE_DATE = re.compile(r"^Create Date: .*$", re.M)


def normalized(text: str) -> str:
    """A revision file without its creation time, the only part that differs between runs."""
    return _CREATE_DATE.sub("Create Date: <when it was built>", text)


def databases(repo: str) -> list[str]:
    return ["default", "users", "logs"] if repo == "multidb" else ["default"]


def _run(project: Path, env: dict[str, str], *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, "manage.py", "db", *args], cwd=project, env=env,
        capture_output=True, text=True, timeout=120,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"db {' '.join(args)} failed ({completed.returncode}):\n{completed.stdout}"
            f"{completed.stderr}"
        )
    return completed.stdout


def _dump(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return "\n".join(connection.iterdump()) + "\n"


def build(repo: str, workdir: Path) -> dict[str, str]:
    """Produce ``repo``'s generated files in ``workdir``; relative path -> content."""
    app, steps = REPOS[repo]
    project = workdir / repo
    shutil.copytree(APPS / app, project, ignore=shutil.ignore_patterns("__pycache__"))
    if not (project / "manage.py").exists():  # the apps share one (as tests/conftest.py copies)
        shutil.copy(APPS / "manage.py", project / "manage.py")
    (project / "migrations" / "versions").mkdir(parents=True)
    for name in HAND_WRITTEN:
        shutil.copy(HERE / repo / name, project / "migrations" / name)
    files = {name: project / f"{name}.db" for name in databases(repo)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
    env.update({"PYTHONDONTWRITEBYTECODE": "1"})
    # The multidb app always configures its binds; they need URLs even for one database.
    for name, variable in URL_VARIABLES.items():
        env[variable] = f"sqlite:///{project / (name + '.db')}"

    produced: dict[str, str] = {}
    (version, message, first), second = steps[0], steps[1]
    _run(project, dict(env, MODEL_VERSION=version), "migrate", "-m", message, "--rev-id", first)
    _run(project, dict(env, MODEL_VERSION=version), "upgrade")
    for name, path in files.items():
        produced[f"states/{repo}-{name}-sqlite.sql"] = _dump(path)
    version, message, rev_id = second
    _run(project, dict(env, MODEL_VERSION=version), "migrate", "-m", message, "--rev-id", rev_id)
    for path in sorted((project / "migrations" / "versions").glob("*.py")):
        produced[f"{repo}/versions/{path.name}"] = path.read_text(encoding="utf-8")

    offline = dict(env, MODEL_VERSION="1")
    for name in databases(repo):
        offline[URL_VARIABLES[name]] = OFFLINE_POSTGRESQL.format(name=name)
    stdout = _run(project, offline, "upgrade", first, "--sql")
    if repo == "multidb":
        # That env.py writes <name>.sql per database; the default database's name is ''.
        for name in databases(repo):
            script = project / (".sql" if name == "default" else f"{name}.sql")
            produced[f"states/{repo}-{name}-postgresql.sql"] = script.read_text(encoding="utf-8")
    else:
        produced[f"states/{repo}-default-postgresql.sql"] = stdout
    return produced


def main() -> None:
    import tempfile

    import flask

    if not flask.__version__.startswith("1."):
        sys.exit("run this with the legacy stack: .venv/legacy/bin/python " + __file__)
    with tempfile.TemporaryDirectory() as tmp:
        for repo in REPOS:
            for old in (HERE / repo / "versions").glob("*.py"):
                old.unlink()
            for relative, text in build(repo, Path(tmp)).items():
                target = HERE / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                print(f"wrote {target.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
