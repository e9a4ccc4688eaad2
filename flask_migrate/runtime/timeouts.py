"""An upgrade never makes the application's queries queue behind it.

On PostgreSQL, an ``ALTER TABLE`` waits for its ``ACCESS EXCLUSIVE`` lock behind every
transaction that has touched the table, and every query that comes after it waits behind the
``ALTER``: one long report query, and the whole application stops.  MySQL and MariaDB do the
same with metadata locks.  So a run that changes the database gives its statements a limit on
how long they wait for a lock:

- PostgreSQL: ``lock_timeout`` (and ``statement_timeout``, when one is set), for the session;
- MySQL/MariaDB: ``lock_wait_timeout`` (metadata locks) and ``innodb_lock_wait_timeout`` (row
  locks), in whole seconds.

A revision that hits the limit is rolled back and tried again after a pause that doubles each
time, a bounded number of times; then the command fails with one line that names the revision
and the statement that waited, the database at the revision before.  A retry needs the revision
to have been rolled back whole: one transaction per revision on PostgreSQL (the default), on
MySQL/MariaDB a revision whose waiting statement was its first.

The settings, strongest first: the command-line option (``--table-lock-timeout``,
``--statement-timeout``, ``--lock-retries``), the environment variable, the keyword of
``Migrate(...)`` (or of env.py's ``configure()``), the default.  0 turns a timeout off.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import sqlalchemy as sa

from ..errors import MigrateError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection

    from .transactions import Restore

logger = logging.getLogger("flask_migrate")

#: ``Config.attributes`` key: the command line's settings (name -> value given).
ATTR_TIMEOUTS = "flask_migrate.timeouts"


@dataclass(frozen=True)
class Setting:
    name: str  # the keyword of Migrate(...) and of the API functions
    option: str
    variable: str
    default: float
    integer: bool = False

    # ``value`` is whatever the user gave (text, a number, or anything else): checked here.
    def parse(self, value: Any, source: str) -> float:
        try:
            number = int(value) if self.integer else float(value)
        except (TypeError, ValueError):
            number = -1
        if number < 0 or (isinstance(number, float) and math.isnan(number)):
            kind = "a whole number" if self.integer else "a number of seconds"
            raise MigrateError(f"{source} must be {kind} (0 or more), not {value!r}")
        return number


TABLE_LOCK_TIMEOUT = Setting(
    "table_lock_timeout", "--table-lock-timeout", "FLASK_MIGRATE_TABLE_LOCK_TIMEOUT", 5.0)
STATEMENT_TIMEOUT = Setting(
    "statement_timeout", "--statement-timeout", "FLASK_MIGRATE_STATEMENT_TIMEOUT", 0.0)
LOCK_RETRIES = Setting(
    "lock_retries", "--lock-retries", "FLASK_MIGRATE_LOCK_RETRIES", 5, integer=True)
SETTINGS = (TABLE_LOCK_TIMEOUT, STATEMENT_TIMEOUT, LOCK_RETRIES)

#: The first pause before a retry, in seconds (shorter if the lock timeout is), then doubled.
FIRST_PAUSE = 1.0
LONGEST_PAUSE = 30.0


@dataclass(frozen=True)
class Timeouts:
    table_lock: float  # seconds; 0 is no limit
    statement: float
    retries: int

    def pause(self, attempt: int) -> float:
        """How long to wait before attempt ``attempt`` (2 for the first retry)."""
        first = min(FIRST_PAUSE, self.table_lock) if self.table_lock else FIRST_PAUSE
        return min(LONGEST_PAUSE, first * 2.0 ** (attempt - 2))


def resolve(command_line: Mapping[str, object], configured: Mapping[str, object]) -> Timeouts:
    """The settings of a run; ``configured`` holds ``Migrate(...)``'s and env.py's keywords."""
    values = []
    for setting in SETTINGS:
        given = command_line.get(setting.name)
        if given is not None:
            values.append(setting.parse(given, setting.option))
            continue
        text = os.environ.get(setting.variable, "").strip()
        if text:
            values.append(setting.parse(text, setting.variable))
            continue
        value = configured.get(setting.name)
        if value is not None:
            values.append(setting.parse(value, f"Migrate({setting.name}=...)"))
            continue
        values.append(setting.default)
    return Timeouts(float(values[0]), float(values[1]), int(values[2]))


def apply(connection: Connection, raw: DBAPIConnection, timeouts: Timeouts) -> Restore | None:
    """Set the limits on the migration connection; returns what puts the session back."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statements = [f"SET lock_timeout = {round(timeouts.table_lock * 1000)}"]
        if timeouts.statement:
            statements.append(f"SET statement_timeout = {round(timeouts.statement * 1000)}")
        _run(connection, raw, statements)

        def restore(driver_connection: DBAPIConnection) -> None:
            with contextlib.suppress(Exception):
                cursor = driver_connection.cursor()
                try:
                    cursor.execute("RESET lock_timeout")
                    cursor.execute("RESET statement_timeout")
                    driver_connection.commit()
                finally:
                    cursor.close()

        return restore
    if dialect in ("mysql", "mariadb"):
        if not timeouts.table_lock:
            return None
        seconds = max(1, math.ceil(timeouts.table_lock))
        cursor = raw.cursor()
        try:
            cursor.execute(
                "SELECT @@SESSION.lock_wait_timeout, @@SESSION.innodb_lock_wait_timeout"
            )
            saved = cursor.fetchone()
            assert saved is not None  # a SELECT without FROM answers one row
            cursor.execute(f"SET SESSION lock_wait_timeout = {seconds}")
            cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
        finally:
            cursor.close()

        def restore_mysql(driver_connection: DBAPIConnection) -> None:
            with contextlib.suppress(Exception):
                cursor = driver_connection.cursor()
                try:
                    cursor.execute(f"SET SESSION lock_wait_timeout = {int(saved[0])}")
                    cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {int(saved[1])}")
                finally:
                    cursor.close()

        return restore_mysql
    return None


def _run(connection: Connection, raw: DBAPIConnection, statements: list[str]) -> None:
    """Session settings that must outlive a rolled-back revision: committed at once, unless
    env.py already holds a transaction (then they go with it)."""
    if connection.in_transaction():
        cursor = raw.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        return
    with connection.begin():
        for statement in statements:
            connection.execute(sa.text(statement))


def _driver_error(error: BaseException) -> BaseException | None:
    """The driver's exception that SQLAlchemy's ``DBAPIError`` wraps, if any."""
    orig: BaseException | None = getattr(error, "orig", None)
    return orig


def waited_for_a_lock(error: BaseException) -> bool:
    """The database gave up waiting for a lock (PostgreSQL ``lock_timeout``, MySQL 1205)."""
    orig = _driver_error(error)
    if orig is None:
        return False
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if code == "55P03":
        return True
    args: tuple[object, ...] = tuple(getattr(orig, "args", ()))
    return bool(args) and args[0] == 1205


def ran_too_long(error: BaseException) -> bool:
    """PostgreSQL's ``statement_timeout`` stopped a statement (SQLSTATE 57014)."""
    orig = _driver_error(error)
    code = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    return code == "57014" and "statement timeout" in str(orig)


def _statement(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "statement", "") or "").split())
    return text if len(text) <= 120 else text[:117] + "..."


def _seconds(value: float) -> str:
    return f"{value:g} s"


def gave_up(
    error: BaseException, revision: str, at: str, timeouts: Timeouts, attempts: int,
    reason: str | None,
) -> MigrateError:
    """The error of a revision that waited for a lock once too often."""
    statement = _statement(error)
    tries = "once" if attempts == 1 else f"{attempts} times"
    why = f" ({reason})" if reason else ""
    return MigrateError(
        f"{revision} waited more than {_seconds(timeouts.table_lock)} for a lock that another "
        f"session holds, {tries}{why}" + (f", at: {statement}" if statement else "")
        + f"; it was rolled back and the database is at {at}; find the session that holds the "
        "lock (on PostgreSQL, pg_blocking_pids() in pg_stat_activity) and end it, or allow a "
        "longer wait with --table-lock-timeout or more tries with --lock-retries, then run the "
        "command again"
    )


def stopped(error: BaseException, revision: str, at: str, timeouts: Timeouts) -> MigrateError:
    """The error of a revision whose statement outlived ``statement_timeout``."""
    statement = _statement(error)
    return MigrateError(
        f"{revision} was stopped after {_seconds(timeouts.statement)} (the statement timeout)"
        + (f", at: {statement}" if statement else "")
        + f"; it was rolled back and the database is at {at}; allow longer with "
        "--statement-timeout (0 for no limit), or make the revision's work smaller, then run "
        "the command again"
    )


def announce_retry(revision: str, timeouts: Timeouts, attempt: int, pause: float) -> None:
    logger.warning(
        "%s waited more than %s for a lock; rolled back, trying again in %s (attempt %d of %d)",
        revision, _seconds(timeouts.table_lock), _seconds(round(pause, 2)), attempt,
        timeouts.retries + 1,
    )


def sleep(seconds: float) -> None:
    time.sleep(seconds)
