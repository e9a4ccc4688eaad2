"""Alembic database migrations for Flask-SQLAlchemy applications.

The public names of the package.  ``MigrateCommand`` (the Flask-Script manager) is built on
first access, so importing ``flask_migrate`` never needs Flask-Script.
"""
from __future__ import annotations

from typing import Any

import alembic

from .commands import (
    branches,
    check,
    convert_multidb,
    current,
    doctor,
    downgrade,
    edit,
    heads,
    history,
    init,
    lint,
    list_templates,
    merge,
    migrate,
    revision,
    show,
    stamp,
    status,
    test,
    upgrade,
)
from .config import Config
from .errors import ChangesDetected, MigrateError, RevisionScriptError, UsageError
from .extension import Migrate

__version__ = "5.0.0.dev0"

#: The installed Alembic's version, as a tuple of ints, e.g. ``(1, 20, 1)``.
alembic_version = tuple(int(part) for part in alembic.__version__.split(".")[:3] if part.isdigit())

__all__ = [
    "ChangesDetected", "Config", "Migrate", "MigrateCommand", "MigrateError",
    "RevisionScriptError", "UsageError", "alembic_version", "branches", "check",
    "convert_multidb", "current", "doctor", "downgrade", "edit", "heads", "history", "init",
    "lint", "list_templates", "merge", "migrate", "revision", "show", "stamp", "status",
    "test", "upgrade",
]


def __getattr__(name: str) -> Any:
    if name == "MigrateCommand":
        from .script_cli import migrate_command

        return migrate_command()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
