"""Revision files as the multi-database runtime runs them: once per database.

Alembic calls a revision's ``upgrade(engine_name=NAME)`` once for every database.  Two kinds of
revision file cannot take that call as written:

- a revision from before the folder became multi-database (``db convert-multidb``) has a plain
  ``upgrade()``; it was written for the default database, and runs there only;
- a revision written by Flask-Migrate 2.x's multi-database template dispatches with
  ``globals()["upgrade_%s" % engine_name]()``, which fails for a database added after it was
  written; it has nothing to do in that database.

:func:`run_per_database` adapts both kinds in the modules Alembic loaded.  The files on disk
are never changed, and a revision that has a function for the database runs as it always did.
"""
from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from .binds import DEFAULT

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

_ADAPTED = "_flask_migrate_per_database"


def run_per_database(script_directory: ScriptDirectory) -> None:
    """Adapt every revision module of ``script_directory`` (an Alembic ``ScriptDirectory``)."""
    for script in script_directory.walk_revisions():
        if not getattr(script, "module_imported", True):
            # A reading command's stand-in from the graph memo (:mod:`.graphmemo`): nothing
            # of it runs, and its module is imported, as Alembic's, only if asked for.
            continue
        module = script.module
        for direction in ("upgrade", "downgrade"):
            function = getattr(module, direction, None)
            if callable(function) and not getattr(function, _ADAPTED, False):
                setattr(module, direction, _per_database(module, direction, function))


def _takes_arguments(function: Callable[..., object]) -> bool:
    try:
        return bool(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return True


def _per_database(
    module: ModuleType, direction: str, function: Callable[..., object]
) -> Callable[..., object]:
    plain = not _takes_arguments(function)
    prefix = f"{direction}_"

    @functools.wraps(function)
    def run(*args: object, **kwargs: object) -> object:
        name = kwargs.get("engine_name", args[0] if args else DEFAULT)
        if plain:
            # Written for a single-database folder: the default database's revision.
            return function() if name == DEFAULT else None
        if not callable(getattr(module, prefix + str(name), None)) and any(
            attribute.startswith(prefix) and callable(getattr(module, attribute))
            for attribute in vars(module)
        ):
            # Functions for other databases, none for this one: written before it existed.
            return None
        return function(*args, **kwargs)

    setattr(run, _ADAPTED, True)
    return run
