"""Real transactions for a migration run, so that a failed upgrade stops at a revision boundary.

SQLite
    Python's sqlite3 driver commits on its own before DDL statements, and Alembic assumes SQLite
    has no transactional DDL, so a failing revision leaves half its tables behind.  SQLite itself
    can roll DDL back.  On the migration connection only, we turn the driver's own transaction
    handling off, start each transaction ourselves with ``BEGIN IMMEDIATE`` (the write lock,
    taken before Alembic reads the current revision), and tell Alembic the DDL is transactional.
    The whole run is then one transaction, or one per revision with
    ``transaction_per_migration=True``; ``autocommit_block()`` still runs its statements outside.
    The connection is put back as it was before it returns to the application's pool.

PostgreSQL
    DDL is transactional, but one transaction for thousands of new tables runs out of lock slots
    (``max_locks_per_transaction``).  Unless the application chose otherwise, each revision gets
    its own transaction, committed without waiting for the disk (``synchronous_commit = off``),
    and a last synchronous commit makes the whole run durable before the command returns.  A crash
    in between loses at most some whole revisions, never part of one.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event

from .locks import Waiter

# While waiting for SQLite's write lock, how long one attempt lets SQLite wait, in ms.
_SQLITE_BUSY_MS = 200


def _dbapi_connection(connection: Any) -> Any:
    fairy = connection.connection
    return getattr(fairy, "dbapi_connection", None) or fairy.connection


def _dbapi_module(connection: Any) -> Any:
    dialect = connection.dialect
    return getattr(dialect, "loaded_dbapi", None) or dialect.dbapi


@contextlib.contextmanager
def sqlite_transactions(
    connection: Any, *, label: str, writes: bool, timeout: float
) -> Iterator[dict[str, Any]]:
    """Run the block with real SQLite transactions on ``connection``.

    :param writes: start transactions with ``BEGIN IMMEDIATE`` (the write lock), waiting at
        most ``timeout`` seconds for another writer; else with a plain ``BEGIN``.
    Yields the extra ``configure()`` arguments the run needs.
    """
    raw = _dbapi_connection(connection)
    locked_error = _dbapi_module(connection).OperationalError
    saved_isolation = raw.isolation_level
    cursor = raw.cursor()
    cursor.execute("PRAGMA busy_timeout")
    saved_busy = int(cursor.fetchone()[0])
    waiter = Waiter(label, timeout)

    def begin(conn: Any) -> None:
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
    try:
        yield {"transactional_ddl": True}
    finally:
        event.remove(connection, "begin", begin)
        with contextlib.suppress(Exception):
            if connection.in_transaction():
                connection.get_transaction().rollback()
            cursor.execute(f"PRAGMA busy_timeout = {int(saved_busy)}")
            cursor.close()
            raw.isolation_level = saved_isolation


@contextlib.contextmanager
def postgresql_transactions(
    connection: Any, options: Mapping[str, Any]
) -> Iterator[dict[str, Any]]:
    """One transaction per revision, committed asynchronously, then flushed once at the end.

    Does nothing when the application set ``transaction_per_migration`` itself.
    """
    if "transaction_per_migration" in options:
        yield {}
        return
    _execute(connection, "SET synchronous_commit TO off")
    try:
        yield {"transaction_per_migration": True}
    finally:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            transaction = connection.get_transaction()
            if transaction is not None and transaction.is_active:
                transaction.rollback()
            # A transaction that writes (it takes an id) and commits synchronously waits
            # until the log is on disk up to its own commit, so every revision before it too.
            with connection.begin():
                connection.execute(sa.text("SET LOCAL synchronous_commit TO on"))
                connection.execute(sa.text("SELECT txid_current()"))
            _execute(connection, "RESET synchronous_commit")


def _execute(connection: Any, sql: str) -> None:
    with connection.begin():
        connection.execute(sa.text(sql))
