"""The guard that keeps autogenerate from writing a revision that drops every table of a database.

An env.py that hands Alembic the wrong models (an empty ``MetaData`` for a bind, say) makes
autogenerate propose dropping every table of that database.  Whatever env.py it comes from,
ours, an older Flask-Migrate's or a hand-written one, such a revision is refused before it is
written: :func:`guard` checks what a ``migrate``/``revision --autogenerate`` run
proposes for each database, :func:`refuse_wiping_diffs` what ``check`` found.

It imports Alembic, SQLAlchemy, :mod:`flask_migrate.extension` and
:mod:`flask_migrate.runtime`, never the command modules.
"""
from __future__ import annotations

from typing import Any, Sequence

import sqlalchemy as sa

from .errors import MigrateError
from .extension import current_record
from .runtime import binds
from .runtime.guard import database_of_token


def _wipe_problem(name: str, upgrade_ops: Any, existing: set[str]) -> str | None:
    """Why these operations look like env.py gave the wrong models, or None."""
    from alembic.operations import ops

    record = current_record()
    if record is None or not existing:
        return None
    if name not in binds.database_names(record, multidb=True):
        return None
    models = {table.name for table in binds.metadata(record, name).tables.values()}
    dropped = {
        op.table_name for op in upgrade_ops.ops
        if isinstance(op, ops.DropTableOp) and op.schema is None
    }
    created = {op.table_name for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp)}
    if not models or not existing <= dropped or models & created:
        return None
    label = f"the bind '{name}'" if name else "the default database"
    return (
        f"autogenerate proposes dropping every table of {label} "
        f"({', '.join(sorted(existing))}) although the application has models for it "
        f"({', '.join(sorted(models))}): env.py gave Alembic the wrong models; nothing was "
        "generated: run 'db doctor' to diagnose the migrations folder and 'db doctor --fix' to "
        "switch to the current env.py"
    )


def _existing_tables(bind: Any, version_table: str) -> set[str]:
    return set(sa.inspect(bind).get_table_names()) - {version_table}


def guard(migration_context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` for ``command.revision``: refuse a wiping revision.

    Alembic calls it once per database, before env.py's own hook, right after it compared that
    database: the last ``UpgradeOps`` is the one just filled.
    """
    if not directives or migration_context.connection is None:
        return
    upgrade_ops = directives[0].upgrade_ops_list[-1]
    name = database_of_token(upgrade_ops.upgrade_token)
    if name is None:
        return
    version_table = getattr(migration_context, "version_table", "alembic_version")
    problem = _wipe_problem(
        name, upgrade_ops, _existing_tables(migration_context.connection, version_table)
    )
    if problem:
        raise MigrateError(problem)


def refuse_wiping_diffs(revision_context: Any) -> None:
    """After ``command.check`` found differences: raise if they wipe a database (see above)."""
    if revision_context is None or not revision_context.generated_revisions:
        return
    record = current_record()
    if record is None:
        return
    for upgrade_ops in revision_context.generated_revisions[-1].upgrade_ops_list:
        name = database_of_token(upgrade_ops.upgrade_token)
        if name is None or name not in binds.database_names(record, multidb=True):
            continue
        engine = binds.engine(record, name)
        if getattr(engine.dialect, "is_async", False):
            continue  # reflection would need an event loop; the static check still applies
        if binds.missing_sqlite_file(engine.url):
            continue  # no tables to wipe, and connecting would create the file
        with engine.connect() as connection:
            existing = _existing_tables(
                connection, record.configure_args.get("version_table", "alembic_version")
            )
        problem = _wipe_problem(name, upgrade_ops, existing)
        if problem:
            raise MigrateError(problem)


def describe_diffs(diffs: Sequence[Any], shown: int = 3) -> str:
    """A short summary of autogenerate's diff tuples, e.g. ``add_table users, add_column ...``."""
    names = []
    for diff in diffs:
        # A diff is ("op", obj, ...) or, for column changes, a list of such tuples.
        first = diff[0] if isinstance(diff, list) else diff
        target = next((item for item in first[1:] if hasattr(item, "name")), None)
        names.append(f"{first[0]} {target.name}" if target is not None else str(first[0]))
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
