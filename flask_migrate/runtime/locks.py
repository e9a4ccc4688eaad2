"""One migration at a time per database: the lock every writing run takes before it reads.

Replicas that start together all run ``db upgrade``.  Each takes this lock on its migration
connection before Alembic reads the current revision (when env.py configures Alembic with that
connection, see :mod:`.guard`), and releases it when env.py is done with the connection (it
goes back to its pool, after env.py's last commit), so the runs happen one after another: the
first applies the revisions, the others find the database at head and do nothing.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``);
- MySQL and MariaDB: a named lock (``GET_LOCK``);
- SQLite: an exclusive ``flock()`` on a file next to the database (``<database>-migrate-lock``,
  removed by the run that holds it).  SQLite's own write lock, which :mod:`.transactions` takes
  with ``BEGIN IMMEDIATE``, lasts only one transaction: with ``transaction_per_migration=True``,
  or across an ``autocommit_block()``, another run could start between two transactions and
  apply a revision a second time.  Without ``fcntl`` (Windows), or for an in-memory database,
  the write lock is all there is.

The wait is bounded: ``FLASK_MIGRATE_LOCK_TIMEOUT`` seconds (default 600), or the
``lock_timeout`` of ``Migrate(...)`` or of ``run_migrations``.  A run that waits says so once.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import re
import time
from typing import TYPE_CHECKING, Callable, Sequence

import sqlalchemy as sa

from ..errors import MigrateError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection

logger = logging.getLogger("flask_migrate")

#: Environment variable: how many seconds a run waits for another run's lock.
TIMEOUT_ENV = "FLASK_MIGRATE_LOCK_TIMEOUT"
DEFAULT_TIMEOUT = 600.0

# Lock names that can be written into SQL as they are; others are hashed.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_:./$-]+")

# How often a waiting run asks again, in seconds.
_POLL = 0.2


def lock_timeout(value: float | None = None) -> float:
    """The wait limit: ``value`` if given, else $FLASK_MIGRATE_LOCK_TIMEOUT, else 600 s."""
    if value is not None:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            seconds = -1.0
        if seconds < 0:
            raise MigrateError(
                f"lock_timeout must be a number of seconds, not {value!r}; e.g. "
                "Migrate(app, db, lock_timeout=120)"
            )
        return seconds
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
    on one server do not wait for each other.  (MySQL allows 64 characters.)  A name too long,
    or with characters other than letters, digits and ``_:./$-``, is hashed, so that it can be
    written into SQL as it is.
    """
    table = f"{schema}.{version_table}" if schema else version_table
    if database:
        table = f"{database}/{table}"
    name = f"flask_migrate:{table}"
    if len(name) > 64 or not _PLAIN_NAME.fullmatch(name):
        name = "flask_migrate:" + hashlib.sha256(table.encode()).hexdigest()[:40]
    return name


def _advisory_key(name: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory lock functions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Waiter:
    """Retries an attempt to take a lock until it succeeds or the time is up.

    :param write_lock: the lock is the database's own write lock, which any process writing to
        it holds (the running application too), not only another migration.
    """

    def __init__(self, label: str, timeout: float, *, write_lock: bool = False) -> None:
        self.label = label
        self.timeout = timeout
        self.write_lock = write_lock

    def wait(self, attempt: Callable[[], bool]) -> None:
        start = time.monotonic()
        said = False
        while not attempt():
            waited = time.monotonic() - start
            if waited >= self.timeout:
                if self.write_lock:
                    raise MigrateError(
                        f"gave up after waiting {waited:.0f} s for the {self.label} database: "
                        "another process (the running application, or another migration) "
                        "holds its write lock; let that process finish its transaction (or "
                        f"stop it) and try again, or set {TIMEOUT_ENV} to wait longer"
                    )
                raise MigrateError(
                    f"gave up after waiting {waited:.0f} s for another migration of the "
                    f"{self.label} database to finish; if none is running, look for a stuck "
                    f"session holding the lock, or set {TIMEOUT_ENV} to wait longer"
                )
            if not said:
                holder = (
                    "another process to release the write lock of" if self.write_lock
                    else "another migration of"
                )
                logger.info(
                    "Waiting for %s the %s database (up to %.0f s)...", holder, self.label,
                    self.timeout,
                )
                said = True
            time.sleep(_POLL)
        if said:
            logger.info("Lock obtained after %.1f s", time.monotonic() - start)


def _scalar(connection: Connection, sql: str, **params: object) -> object:
    if connection.in_transaction():
        # env.py began the transaction itself (the multi-database env.py of Flask-Migrate
        # 2.x-4.x does, before configuring): a session-level lock is taken inside it all the
        # same, and outlives it.
        return connection.execute(sa.text(sql), params).scalar()
    # Its own short transaction, so that Alembic starts from a connection outside one.
    with connection.begin():
        return connection.execute(sa.text(sql), params).scalar()


#: Releases a lock, given the driver's connection it was taken on.
Release = Callable[["DBAPIConnection"], None]


def acquire(connection: Connection, label: str, name: str, timeout: float) -> Release | None:
    """Take the migration lock of PostgreSQL, MySQL/MariaDB or a SQLite file on ``connection``.

    Returns how to release it, from the driver's connection (the lock is released when that
    connection goes back to its pool, after env.py's last commit); None for dialects without
    one.  Waits at most ``timeout`` seconds for another run.
    """
    dialect = connection.dialect.name
    waiter = Waiter(label, timeout)
    if dialect == "postgresql":
        key = _advisory_key(name)
        waiter.wait(lambda: bool(_scalar(connection, "SELECT pg_try_advisory_lock(:k)", k=key)))
        resets = _watch_client(connection)
        return functools.partial(_release, f"SELECT pg_advisory_unlock({key})", resets=resets)
    if dialect in ("mysql", "mariadb"):
        # Without waiting on the server, so that our own loop says it waits and keeps time.
        waiter.wait(lambda: _scalar(connection, "SELECT GET_LOCK(:n, 0)", n=name) == 1)
        # lock_name() makes names of quote-free characters only.
        return functools.partial(_release, f"SELECT RELEASE_LOCK('{name}')")
    if dialect == "sqlite":
        return _sqlite_run_lock(connection.engine.url, waiter)
    return None


def sqlite_lock_path(url: URL) -> str | None:
    """The lock file of the SQLite database at ``url`` (a SQLAlchemy URL); None for an
    in-memory or URI-named database, which get none."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return f"{database}-migrate-lock"


def _sqlite_run_lock(url: URL, waiter: Waiter) -> Release | None:
    """Take an exclusive ``flock()`` on the database's lock file; None where there is none."""
    path = sqlite_lock_path(url)
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's write lock is all there is
        path = None
    if path is None:
        return None
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

    def release(raw: DBAPIConnection) -> None:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)
        os.close(held[0])

    return release


def _watch_client(connection: Connection) -> list[str]:
    """Have PostgreSQL check, while it runs a statement of this session, that the client is
    still there; returns the statements that undo it.

    A run killed outright (SIGKILL, ``docker kill``) in the middle of a statement that takes
    long on the server (a data migration, an index build) would otherwise keep the lock, and
    that statement would run on, until the statement ends: the server only notices a client
    gone when it next reads from it.  ``client_connection_check_interval`` (PostgreSQL 14)
    has it look every second.  A value the application set is left alone, and so is a session
    inside env.py's own transaction (where a failure would end that transaction).
    """
    if (connection.dialect.server_version_info or (0,)) < (14,) or connection.in_transaction():
        return []
    try:
        with connection.begin():
            setting = connection.execute(sa.text("SHOW client_connection_check_interval"))
            if setting.scalar() != "0":
                return []
            connection.execute(sa.text("SET client_connection_check_interval = 1000"))
    except sa.exc.DBAPIError:  # a platform where the server cannot check (it says so)
        return []
    return ["RESET client_connection_check_interval"]


def _release(sql: str, raw: DBAPIConnection, resets: Sequence[str] = ()) -> None:
    """Run ``sql`` on the driver's connection ``raw`` and end the transaction it may begin;
    then run the statements ``resets`` of session settings, and commit them (a rollback
    would undo a ``RESET`` too).

    A connection that broke took its session, and the lock, with it: nothing to do then.
    """
    with contextlib.suppress(Exception):
        cursor = raw.cursor()
        try:
            cursor.execute(sql)
            cursor.fetchall()
            raw.rollback()
            if resets:
                for reset in resets:
                    cursor.execute(reset)
                raw.commit()
        finally:
            cursor.close()
