"""Real transactions for a migration run, so that a failed upgrade stops at a revision boundary.

SQLite
    Python's sqlite3 driver commits on its own before DDL statements, and Alembic assumes SQLite
    has no transactional DDL, so a failing revision leaves half its tables behind.  SQLite itself
    can roll DDL back.  On the migration connection only, we turn the driver's own transaction
    handling off, start each transaction ourselves with ``BEGIN IMMEDIATE`` (the write lock,
    taken before Alembic reads the current revision), and tell Alembic the DDL is transactional.
    The whole run is then one transaction, or one per revision with
    ``transaction_per_migration=True``; ``autocommit_block()`` still runs its statements outside.
    The connection is put back as it was when it returns to the application's pool.

PostgreSQL
    DDL is transactional, but one transaction for thousands of new tables runs out of lock slots
    (``max_locks_per_transaction``).  Unless the application (or env.py) chose otherwise, or
    env.py runs every revision in a transaction of its own making, each revision gets
    its own transaction, committed without waiting for the disk (``synchronous_commit = off``),
    and a last synchronous commit makes the whole run durable before the command returns.  A crash
    in between loses at most some whole revisions, never part of one.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Callable

import sqlalchemy as sa
from sqlalchemy import event

from .locks import Waiter

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection, DBAPIModule

# While waiting for SQLite's write lock, how long one attempt lets SQLite wait, in ms.
_SQLITE_BUSY_MS = 200


def dbapi_connection(connection: Connection) -> DBAPIConnection:
    """The driver's connection under a SQLAlchemy ``Connection``."""
    fairy = connection.connection
    # SQLAlchemy 1.4 names it ``connection`` only; 2.0 also ``dbapi_connection``.
    raw: DBAPIConnection = getattr(fairy, "dbapi_connection", None) or fairy.connection
    return raw


def _dbapi_module(connection: Connection) -> DBAPIModule:
    dialect = connection.dialect
    # SQLAlchemy 1.4 has ``dbapi`` only; 2.0 ``loaded_dbapi``.
    module: DBAPIModule | None = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi
    assert module is not None  # a dialect that made a connection has its driver
    return module


#: Puts a driver's connection back as it was, when it goes back to its pool.
Restore = Callable[["DBAPIConnection"], None]


def sqlite_transactions(
    connection: Connection, *, label: str, writes: bool, timeout: float
) -> tuple[dict[str, bool], Restore]:
    """Give ``connection`` real SQLite transactions from now on.

    :param writes: start transactions with ``BEGIN IMMEDIATE`` (the write lock), waiting at
        most ``timeout`` seconds for another writer; else with a plain ``BEGIN``.
    Returns the extra ``configure()`` arguments the run needs, and how to put the driver's
    connection back as it was.  When env.py has already begun a transaction on the connection
    (as the multi-database env.py of Flask-Migrate 2.x-4.x does, before configuring), it is
    made a real one at once.
    """
    raw = dbapi_connection(connection)
    locked_error: type[Exception] = _dbapi_module(connection).OperationalError
    saved_isolation = raw.isolation_level
    cursor = raw.cursor()
    cursor.execute("PRAGMA busy_timeout")
    row = cursor.fetchone()
    assert row is not None  # the PRAGMA always answers
    saved_busy = int(row[0])
    waiter = Waiter(label, timeout, write_lock=True)

    def begin(conn: Connection) -> None:
        if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
            return  # autocommit_block(): no transaction wanted
        # Alembic's autocommit_block() restores the dialect's default, which turns the driver's
        # implicit transactions back on; take them off again for every transaction.
        raw.isolation_level = None
        if not writes:
            cursor.execute("BEGIN")
            return

        def attempt() -> bool:
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except locked_error as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                return False
            return True

        waiter.wait(attempt)

    raw.isolation_level = None
    cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_MS if writes else saved_busy}")
    event.listen(connection, "begin", begin)
    if connection.in_transaction():
        begin(connection)

    def restore(driver_connection: DBAPIConnection) -> None:
        with contextlib.suppress(Exception):
            event.remove(connection, "begin", begin)
        # Each step on its own: one that fails (a closed connection) must not skip the next.
        with contextlib.suppress(Exception):
            driver_connection.rollback()  # only ever needed when env.py did not end its own
        with contextlib.suppress(Exception):
            cursor.execute(f"PRAGMA busy_timeout = {int(saved_busy)}")
            cursor.close()
        with contextlib.suppress(Exception):
            driver_connection.isolation_level = saved_isolation

    return {"transactional_ddl": True}, restore


def postgresql_transactions(connection: Connection) -> tuple[dict[str, bool], Restore]:
    """One transaction per revision, committed asynchronously, then flushed once at the end.

    Returns the extra ``configure()`` arguments, and what makes the run durable (a last
    synchronous commit) and resets the session, from the driver's connection.
    """
    _execute(connection, "SET synchronous_commit TO off")

    def restore(driver_connection: DBAPIConnection) -> None:
        # A transaction that writes (it takes an id) and commits synchronously waits until the
        # log is on disk up to its own commit, so every revision before it too.
        with contextlib.suppress(Exception):
            cursor = driver_connection.cursor()
            try:
                cursor.execute("SET LOCAL synchronous_commit TO on")
                cursor.execute("SELECT txid_current()")
                cursor.fetchall()
                driver_connection.commit()
                cursor.execute("RESET synchronous_commit")
                driver_connection.commit()
            finally:
                cursor.close()

    return {"transaction_per_migration": True}, restore


def _execute(connection: Connection, sql: str) -> None:
    with connection.begin():
        connection.execute(sa.text(sql))
