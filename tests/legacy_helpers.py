"""The migrations folders Flask-Migrate 2.x wrote (``tests/legacy_repos/``) and the database
states the legacy stack left them in: a project made of one, and reading a folder back.
"""
from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import Project

REPOS = Path(__file__).parent / "legacy_repos"
STATES = REPOS / "states"
#: Repository -> the test app whose models its revisions follow.
REPO_APPS = {"single": "single", "multidb": "legacymulti"}
#: Repository -> database name -> the environment variable holding its URL.
DATABASES = {
    "single": {"default": "DATABASE_URL"},
    "multidb": {"default": "DATABASE_URL", "users": "USERS_URL", "logs": "LOGS_URL"},
}
#: The two revisions of each repository; the stored states are at the first.
SINGLE = ("3f2a9c81d4e7", "8b61e05a7c2d")
MULTI = ("5d0e7a3b9f14", "c47b2e96a0d8")
#: Database name -> its table and the column revision 2 adds, in the multidb repository.
MULTI_TABLES = {"default": ("setting", "value"), "users": ("account", "email"),
                "logs": ("event", "level")}


def load_state(repo: str, name: str, url: str) -> None:
    """Put database ``name`` of ``repo`` at ``url`` in the state the legacy stack left it."""
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    script = (STATES / f"{repo}-{name}-{backend}.sql").read_text(encoding="utf-8")
    if backend == "sqlite":
        with contextlib.closing(sqlite3.connect(url[len("sqlite:///"):])) as connection:
            connection.executescript(script)
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(script)
    finally:
        engine.dispose()


def legacy_project(make_project, repo: str, **env: str) -> Project:
    """A project with ``repo``'s migrations folder and its databases in the legacy state."""
    project = make_project(REPO_APPS[repo], **env)
    shutil.copytree(REPOS / repo, project.migrations,
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name, variable in DATABASES[repo].items():
        load_state(repo, name, project.env[variable])
    return project


def urls_of(project: Project, repo: str) -> dict[str, str]:
    return {name: project.env[variable] for name, variable in DATABASES[repo].items()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}
