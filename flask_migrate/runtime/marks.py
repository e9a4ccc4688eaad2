"""Which revision a run was in the middle of, so that the next run knows it did not finish.

A revision that does not finish is rolled back on PostgreSQL and SQLite, with two exceptions:
an ``autocommit_block()`` commits what the revision did before it, and MySQL/MariaDB cannot
roll DDL back at all (each ``CREATE``, ``ALTER`` or ``DROP`` commits on its own).  A run that
is killed, loses its server or fails inside such a revision leaves part of it in the database,
while the version table still names the revision before.  Without a record of that, the next run
applies the revision again from its first statement and fails there (``Table 't152' already
exists``), blaming a script that is fine.

So a run records the revision in progress, as Flyway's history does, and makes that record
durable exactly when part of the revision is: in a table named after the version table,
``<version table>_in_progress``, holding one row.

- MySQL/MariaDB: the table is created when the first revision starts and dropped when the run
  is done.  The row is written before each revision (the revision's first DDL statement commits
  it) and deleted with the version table's update, in the same transaction.
- PostgreSQL and SQLite: the row is written only when a revision commits in its middle (an
  ``autocommit_block()``, in the transaction that commits), and the table dropped with the
  version table's update.

A row that some statement of its revision completed before is left behind when that revision
fails; one whose revision ran no statement is removed.  A run that finds the row
(:func:`read`) refuses to upgrade or downgrade and says what to do (:class:`Interrupted`);
``status`` shows it; a ``stamp`` removes it, the user having said where the database stands.
Autogenerate never sees the table (:func:`excluded_from_autogenerate`).
"""
from __future__ import annotations

import datetime
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Collection, Iterator, Mapping, cast

import sqlalchemy as sa
from sqlalchemy import event

from ..errors import MigrateError

if TYPE_CHECKING:
    from alembic.runtime.environment import IncludeNameFn, NameFilterParentNames, NameFilterType
    from alembic.runtime.migration import (
        MigrationContext, MigrationInfo, MigrationStep, RevisionStep,
    )
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.sql.compiler import Compiled
    from sqlalchemy.sql.elements import ClauseElement

    from .._alembic import StepsFunction

logger = logging.getLogger("flask_migrate")

#: Dialects the record is kept on (others go without, as before).
DIALECTS = frozenset({"postgresql", "sqlite", "mysql", "mariadb"})


def table_name(version_table: str) -> str:
    return f"{version_table}_in_progress"


def _table(version_table: str, schema: str | None) -> sa.Table:
    return sa.Table(
        table_name(version_table), sa.MetaData(),
        sa.Column("revision", sa.String(255), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("started", sa.String(32), nullable=False),
        sa.Column("started_by", sa.String(255), nullable=False),
        schema=schema,
    )


@dataclass(frozen=True)
class Interrupted:
    """A revision an earlier run started and did not finish."""

    revision: str
    direction: str  # "upgrade" or "downgrade"
    started: str
    started_by: str

    def describe(self) -> str:
        return f"{self.direction} started {self.started} by {self.started_by}"


def read(connection: Connection, version_table: str, schema: str | None) -> Interrupted | None:
    """The record a run left on ``connection``'s database, if any (a query or two)."""
    if connection.dialect.name not in DIALECTS:
        return None
    table = _table(version_table, schema)
    if not sa.inspect(connection).has_table(table.name, schema=schema):
        return None
    row = connection.execute(
        sa.select(table.c.revision, table.c.direction, table.c.started, table.c.started_by)
        .limit(1)
    ).first()
    return Interrupted(*row) if row is not None else None


def excluded_from_autogenerate(
    version_table: str, include_name: IncludeNameFn | None
) -> IncludeNameFn:
    """An ``include_name`` hook that hides the record's table, then asks env.py's own."""
    name = table_name(version_table)

    def include(
        object_name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames
    ) -> bool:
        if type_ == "table" and object_name == name:
            return False
        return include_name(object_name, type_, parent_names) if include_name else True

    return include


def refusal(
    found: Interrupted, current: str, where: str, script: ScriptDirectory | None
) -> MigrateError:
    """The error of a run that finds ``found`` on the database (``where``, e.g. "the
    database"), which its version table says is at ``current``."""
    revision = found.revision
    try:
        doc = (script.get_revision(revision).doc or "").strip().splitlines() if script else []
    except Exception:  # a revision no longer in the folder: say its id only
        doc = []
    named = f"revision {revision}" + (f" ({doc[0]})" if doc else "")
    if found.direction == "downgrade":
        undo, redo = "finish reverting it by hand", "redo what was reverted"
        before = f"'db stamp <the revision before {revision}>'"
        after = f"'db stamp {revision}'"
        advice = f"{undo} and run {before}, or {redo} and run {after}"
    else:
        advice = (
            f"undo those changes by hand and run 'db stamp {current}', or complete them and "
            f"run 'db stamp {revision}' ('db upgrade --sql {current}:{revision}' shows what "
            "the revision does)"
        )
    return MigrateError(
        f"{named} did not finish in an earlier run ({found.describe()}) after part of its "
        f"work had been committed: {where} is recorded at {current} but may hold some of its "
        f"changes; {advice}, then run the command again"
    )


class RevisionMark:
    """Keeps the record for one database's run (see the module's documentation).

    Hook it in with :meth:`wrap` (the step generator), :meth:`applied` (``on_version_apply``)
    and :meth:`finish` (when the connection goes back to its pool).
    """

    def __init__(
        self, connection: Connection, raw: DBAPIConnection, version_table: str,
        schema: str | None, command: str | None, where: str,
    ) -> None:
        self.connection = connection
        self.raw = raw
        self.table = _table(version_table, schema)
        self.version_table = version_table
        self.schema = schema
        self.command = command
        self.where = where
        self.active = connection.dialect.name in DIALECTS
        self.transactional = True
        self.step: RevisionStep | None = None  # the revision step in progress
        self.completed = 0  # statements it has run so far
        self.marked = False  # its row is written
        self.created = False  # MySQL/MariaDB: this run created the table
        self._listening = False

    # -- the hooks ------------------------------------------------------------------------------

    def wrap(self, fn: StepsFunction) -> StepsFunction:
        def steps(heads: tuple[str, ...], context: MigrationContext) -> Iterator[MigrationStep]:
            if not self.active or context.as_sql:
                yield from fn(heads, context)
                return
            self.transactional = bool(context.impl.transactional_ddl)
            connection = context.connection
            assert connection is not None  # online: env.py configured it with this one
            found = read(connection, self.version_table, self.schema)
            if self.command == "stamp":
                planned = list(fn(heads, context))  # an unknown target fails here, first
                yield from planned
                if found is not None:
                    # Once the version table says where the database stands, in the same
                    # transaction: a stamp that fails leaves the record where it was.
                    self._clear(found)
                return
            if found is not None:
                current = ",".join(heads) if heads else "base"
                raise refusal(found, current, self.where, context.script)
            self._listen()
            for step in fn(heads, context):
                self._starting(step)
                yield step
            self.step = None
            if self.created:
                self._execute(f"DROP TABLE IF EXISTS {self._name()}")
                self.created = False

        return steps

    def applied(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: Collection[str],
        run_args: Mapping[str, object],
    ) -> None:
        """``on_version_apply``: the revision is done, in the transaction that records it."""
        if self.step is None:
            return
        if self.marked:
            if self.transactional:
                self._execute(f"DROP TABLE {self._name()}")
            else:
                self._execute(str(self._compiled(self.table.delete())))
            self.marked = False
        self.step = None

    def finish(self) -> None:
        """The connection is going back to its pool: stop watching it; on MySQL/MariaDB, drop
        the table unless it holds the record of a revision that ran statements and failed."""
        if self._listening:
            self._listening = False
            for name, listener in self._listeners():
                try:
                    event.remove(self.connection, name, listener)
                except Exception:  # the connection is gone; so are its listeners
                    pass
        if self.created and not (self.step is not None and self.completed):
            try:
                self._execute(f"DROP TABLE IF EXISTS {self._name()}")
            except Exception:  # the server went away: the next run finds an empty table
                pass
            self.created = False

    def can_retry(self) -> bool:
        """After a revision failed: whether it left nothing behind, so that it can run again
        (then its record, if written, is removed)."""
        if self.step is None:
            return True
        if self.transactional:
            if self.marked:
                return False  # a block committed part of it
            self.step = None
            return True
        if self.completed:
            return False  # a DDL statement of it committed itself
        if self.marked:
            self._execute(str(self._compiled(self.table.delete())))
            self.raw.commit()
            self.marked = False
        self.step = None
        return True

    # -- inside ---------------------------------------------------------------------------------

    def _starting(self, step: MigrationStep) -> None:
        script = getattr(step, "revision", None)  # Alembic's RevisionStep; stamps have none
        revision = getattr(script, "revision", None)
        if not isinstance(revision, str):
            self.step = None
            return
        self.step = cast("RevisionStep", step)  # a step with a revision: Alembic's RevisionStep
        self.completed = 0
        if not self.transactional:
            # Each DDL statement commits on its own: the row must be there before the first.
            if not self.created:
                self._execute(self._create())
                self.created = True
            self._write(revision, step)

    def _write(self, revision: str, step: MigrationStep) -> None:
        started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        row = {
            "revision": revision,
            "direction": "upgrade" if step.is_upgrade else "downgrade",
            "started": started,
            "started_by": f"{socket.gethostname()} pid {os.getpid()}",
        }
        self._execute(str(self._compiled(self.table.insert().values(**row))))
        self.marked = True

    def _listeners(self) -> list[tuple[str, Callable[..., None]]]:
        return [("after_cursor_execute", self._counted), ("commit", self._committing)]

    def _listen(self) -> None:
        if not self._listening:
            for name, listener in self._listeners():
                event.listen(self.connection, name, listener)
            self._listening = True

    def _counted(self, *args: object) -> None:
        if self.step is not None:
            self.completed += 1

    def _committing(self, connection: Connection) -> None:
        """A commit in the middle of a revision (``autocommit_block()``): record the revision,
        in the transaction being committed, before the block's statements take effect one by
        one."""
        if self.step is None or self.marked or not self.transactional:
            return
        self._execute(self._create())
        self._write(self.step.revision.revision, self.step)

    def _clear(self, found: Interrupted) -> None:
        self._execute(f"DROP TABLE IF EXISTS {self._name()}")
        self.raw.commit()  # with the stamp's own changes to the version table
        logger.info(
            "Cleared the record of revision %s, which did not finish (%s)",
            found.revision, found.describe(),
        )

    def _name(self) -> str:
        return self.connection.dialect.identifier_preparer.format_table(self.table)

    def _create(self) -> str:
        ddl = str(self._compiled(sa.schema.CreateTable(self.table))).strip()
        return ddl.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1)

    def _compiled(self, clause: ClauseElement) -> Compiled:
        return clause.compile(
            dialect=self.connection.dialect, compile_kwargs={"literal_binds": True}
        )

    def _execute(self, sql: str) -> None:
        """On the driver's connection, in its transaction, unseen by SQLAlchemy's events."""
        cursor = self.raw.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()
