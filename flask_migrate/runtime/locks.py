"""One migration at a time per database: the lock every writing run takes before it reads.

Replicas that start together all run ``db upgrade``.  Each takes this lock on its migration
connection before Alembic reads the current revision, and releases it when its run is over, so
the runs happen one after another: the first applies the revisions, the others find the database
at head and do nothing.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``);
- MySQL and MariaDB: a named lock (``GET_LOCK``);
- SQLite: an exclusive ``flock()`` on a file next to the database (``<database>-migrate-lock``,
  removed by the run that holds it).  SQLite's own write lock, which :mod:`.transactions` takes
  with ``BEGIN IMMEDIATE``, lasts only one transaction: with ``transaction_per_migration=True``,
  or across an ``autocommit_block()``, another run could start between two transactions and
  apply a revision a second time.  Without ``fcntl`` (Windows), or for an in-memory database,
  the write lock is all there is.

The wait is bounded: ``FLASK_MIGRATE_LOCK_TIMEOUT`` seconds (default 600), or the
``lock_timeout`` argument of ``run_migrations``.  A run that waits says so once.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from typing import Any, Callable, Iterator

import sqlalchemy as sa

from ..errors import MigrateError

logger = logging.getLogger("flask_migrate")

#: Environment variable: how many seconds a run waits for another run's lock.
TIMEOUT_ENV = "FLASK_MIGRATE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 600.0

# How often a waiting run asks again, in seconds.
_POLL = 0.2


def lock_timeout(value: float | None = None) -> float:
    """The wait limit: ``value`` if given, else $FLASK_MIGRATE_LOCK_TIMEOUT, else 600 s."""
    if value is not None:
        return float(value)
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise MigrateError(
            f"{TIMEOUT_ENV} must be a number of seconds, not '{text}'; e.g. "
            f"{TIMEOUT_ENV}=120"
        )
    return seconds


def lock_name(version_table: str, schema: str | None, database: str | None = None) -> str:
    """The name of the lock that guards one version table of one database.

    MySQL's named locks are server-wide, so the name includes the database: two applications
    on one server do not wait for each other.  (MySQL allows 64 characters.)
    """
    table = f"{schema}.{version_table}" if schema else version_table
    if database:
        table = f"{database}/{table}"
    name = f"flask_migrate:{table}"
    if len(name) > 64:
        name = "flask_migrate:" + hashlib.sha256(table.encode()).hexdigest()[:40]
    return name


def _advisory_key(name: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory lock functions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Waiter:
    """Retries an attempt to take a lock until it succeeds or the time is up."""

    def __init__(self, label: str, timeout: float) -> None:
        self.label = label
        self.timeout = timeout

    def wait(self, attempt: Callable[[], bool]) -> None:
        start = time.monotonic()
        said = False
        while not attempt():
            waited = time.monotonic() - start
            if waited >= self.timeout:
                raise MigrateError(
                    f"gave up after waiting {waited:.0f} s for another migration of the "
                    f"{self.label} database to finish; if none is running, look for a stuck "
                    f"session holding the lock, or set {TIMEOUT_ENV} to wait longer"
                )
            if not said:
                logger.info(
                    "Waiting for another migration of the %s database to finish "
                    "(up to %.0f s)...", self.label, self.timeout
                )
                said = True
            time.sleep(_POLL)
        if said:
            logger.info("Lock obtained after %.1f s", time.monotonic() - start)


def _scalar(connection: Any, sql: str, **params: Any) -> Any:
    # Its own short transaction: a session-level lock outlives it, and Alembic then starts
    # from a connection that is not inside a transaction.
    with connection.begin():
        return connection.execute(sa.text(sql), params).scalar()


@contextlib.contextmanager
def migration_lock(connection: Any, label: str, name: str, timeout: float) -> Iterator[None]:
    """Hold the migration lock of PostgreSQL, MySQL/MariaDB or a SQLite file for the block.

    Other dialects have none.
    """
    dialect = connection.dialect.name
    waiter = Waiter(label, timeout)
    if dialect == "postgresql":
        key = _advisory_key(name)
        waiter.wait(lambda: bool(_scalar(connection, "SELECT pg_try_advisory_lock(:k)", k=key)))
        release = "SELECT pg_advisory_unlock(:k)"
        params: dict[str, Any] = {"k": key}
    elif dialect in ("mysql", "mariadb"):
        # Without waiting on the server, so that our own loop says it waits and keeps time.
        waiter.wait(lambda: _scalar(connection, "SELECT GET_LOCK(:n, 0)", n=name) == 1)
        release = "SELECT RELEASE_LOCK(:n)"
        params = {"n": name}
    elif dialect == "sqlite":
        with _sqlite_run_lock(connection.engine.url, waiter):
            yield
        return
    else:
        yield
        return
    try:
        yield
    finally:
        _release(connection, release, params)


def sqlite_lock_path(url: Any) -> str | None:
    """The lock file of the SQLite database at ``url`` (a SQLAlchemy URL); None for an
    in-memory or URI-named database, which get none."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-migrate-lock"


@contextlib.contextmanager
def _sqlite_run_lock(url: Any, waiter: Waiter) -> Iterator[None]:
    """Hold an exclusive ``flock()`` on the database's lock file for the block."""
    path = sqlite_lock_path(url)
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's write lock is all there is
        path = None
    if path is None:
        yield
        return
    lock_file: str = path
    held: list[int] = []

    def attempt() -> bool:
        while True:
            descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                return False
            # The run that held it removes the file before it lets go: a lock obtained on a
            # file that is no longer at that path guards nothing; take a fresh one.
            try:
                current = os.path.samestat(os.fstat(descriptor), os.stat(lock_file))
            except FileNotFoundError:
                current = False
            if current:
                held.append(descriptor)
                return True
            os.close(descriptor)

    waiter.wait(attempt)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        os.close(held[0])


def _release(connection: Any, sql: str, params: dict[str, Any]) -> None:
    try:
        transaction = connection.get_transaction()
        if transaction is not None and transaction.is_active:
            transaction.rollback()
        _scalar(connection, sql, **params)
    except sa.exc.SQLAlchemyError:
        # A connection that broke takes its session, and the lock, with it.  Make sure it is
        # not handed out again by the pool.
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            connection.invalidate()
