"""The guarantees of a migration run, established by the command around whatever env.py does.

A migrations folder's env.py may be one of our thin templates, a full env.py that Flask-Migrate
1.x-4.x generated years ago, or one its owners edited by hand.  Whichever it is, it ends up
calling ``context.configure(connection=...)`` once per database and then
``context.run_migrations()``.  While a command runs, :func:`guarded` stands between those
calls and Alembic (see :func:`flask_migrate._alembic.install_environment_hooks`), so that for
every connection env.py configures:

- a run that changes the database takes the migration lock first (:mod:`.locks`), before
  Alembic reads the current revision, and waits a bounded time for another run;
- SQLite gets real transactions, PostgreSQL one transaction per revision with a durable end
  (:mod:`.transactions`), except for ``db test`` on its throwaway database (:mod:`..testing`);
- each revision applied is logged with its duration, and a summary once the command succeeded
  (:mod:`.progress`); ``upgrade`` to the heads answers from the heads memo (:mod:`.headcache`);
- its statements wait a bounded time for the application's locks, and a revision that waited
  too long is rolled back and tried again (:mod:`.timeouts`);
- the revision in progress is recorded where part of it can outlive a failure, and a run that
  finds such a record refuses to go on (:mod:`.marks`);
- a command that only reads leaves the version table alone (``dont_mutate``);
- the database being visited is known by name and masked URL, for reports and errors;
- the logging configuration is left alone: what an old env.py's ``fileConfig()`` changed is
  undone before any migration runs (:class:`_LoggingState`);
- the connection goes back to its pool as it was (lock released, driver settings restored)
  when env.py is done with it, after its last commit.

Revisions of a multi-database folder run once per database (:mod:`.revisions`).

An env.py that must go without sets ``context.config.attributes["flask_migrate.guarantees"]
= False`` before it configures Alembic (:data:`OPT_OUT`).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

from sqlalchemy import event

from .. import _alembic
from ..config import ATTR_COMMAND, ATTR_DATABASE, ATTR_THROWAWAY
from ..errors import MigrateError
from ..extension import current_record
from . import graphmemo
from .binds import DEFAULT, safe_url
from .headcache import upgrade_to_heads
from .locks import acquire, lock_name, lock_timeout
from .marks import RevisionMark, excluded_from_autogenerate
from .progress import Progress
from . import timeouts as _timeouts
from .transactions import Restore, dbapi_connection, postgresql_transactions, sqlite_transactions

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry, Pool

    from .._alembic import Options, StepsFunction
    from .locks import Release

    #: Pool "checkin" listener: the driver's connection (None once invalidated) and its record.
    Checkin = Callable[[DBAPIConnection | None, ConnectionPoolEntry], None]

logger = logging.getLogger("flask_migrate")

#: ``Config.attributes`` key of the :class:`RunGuard` of the command in progress.
ATTR_GUARD = "flask_migrate.guard"
#: ``Config.attributes`` key an env.py sets to False to run without the guarantees.
OPT_OUT = "flask_migrate.guarantees"

#: Commands (``Config.attributes["flask_migrate.command"]``) that only read the database: they
#: take no migration lock.  Any other command, or none named, is treated as one that writes.
READ_ONLY_COMMANDS = frozenset(
    {"current", "check", "migrate", "revision", "history", "heads", "branches", "show", "status",
     "plan"}
)


def writes(config: Config) -> bool:
    """Whether the command running with ``config`` changes the database."""
    return config.attributes.get(ATTR_COMMAND) not in READ_ONLY_COMMANDS


def database_of_token(token: str | None) -> str | None:
    """The database a revision token names (``users_upgrades`` -> ``users``, ``upgrades`` ->
    the default database), or None for a token of another form."""
    if token is None or token == "upgrades":
        return DEFAULT
    if token.endswith("_upgrades"):
        return token[: -len("_upgrades")]
    return None


#: A logger's level, handlers, propagation and whether it is disabled.
_LoggerState = tuple[int, list[logging.Handler], bool, bool]


class _LoggingState:
    """Undoes what an old env.py's ``fileConfig()`` did to the loggers that existed before.

    The full env.py of Flask-Migrate 1.x-4.x calls ``logging.config.fileConfig()`` with the
    logging sections of alembic.ini.  That disables every logger the process had (ours and the
    application's), replaces the root logger's handlers, configures the loggers alembic.ini
    names and resets their children.  As soon as env.py configures Alembic, and again once the
    command is over, exactly those changes are undone: a logger that is disabled but was not is
    enabled again, the root logger and the loggers alembic.ini names get their level, handlers
    and propagation back, and so do their children that still look as ``fileConfig()`` left
    them.  Anything else, e.g. a handler the application (or SQLAlchemy's ``echo``) added while
    the command ran, is left alone.  Made only for an env.py that calls ``fileConfig()``.
    """

    def __init__(self, named: list[str]) -> None:
        self.root = logging.getLogger()
        self.named = [name for name in named if name and name != "root"]
        self.saved = {name: self._state(logger) for name, logger in self._loggers()}
        self.saved_root = self._state(self.root)

    @staticmethod
    def _loggers() -> list[tuple[str, logging.Logger]]:
        return [
            (name, logger) for name, logger in list(logging.Logger.manager.loggerDict.items())
            if isinstance(logger, logging.Logger)
        ]

    @staticmethod
    def _state(logger: logging.Logger) -> _LoggerState:
        return logger.level, list(logger.handlers), logger.propagate, logger.disabled

    def _touched(self, name: str, logger: logging.Logger) -> bool:
        """Whether fileConfig() may have set this logger's level, handlers and propagation."""
        if name in self.named:
            return True
        if any(name.startswith(parent + ".") for parent in self.named):
            # A child fileConfig() reset: it keeps what was added to it since.
            return logger.level == logging.NOTSET and not logger.handlers and logger.propagate
        return False

    def restore(self) -> None:
        for name, logger in self._loggers():
            state = self.saved.get(name)
            if state is None:
                continue
            level, handlers, propagate, disabled = state
            if self._touched(name, logger):
                logger.setLevel(level)
                logger.handlers[:] = handlers
                logger.propagate = propagate
            if logger.disabled and not disabled:
                logger.disabled = False
        level, handlers, _, _ = self.saved_root
        if self.root.level != level:
            self.root.setLevel(level)
        self.root.handlers[:] = handlers


def _file_config_loggers(config: Config) -> list[str] | None:
    """The loggers alembic.ini configures, when env.py calls fileConfig(); None otherwise."""
    from ..folder import folder_of

    env = folder_of(config).env
    if env is None or "file_config" not in env.constructs:
        return None
    try:
        parser = config.file_config
        keys = [key.strip() for key in parser.get("loggers", "keys").split(",")]
        return [parser.get(f"logger_{key}", "qualname", fallback="") for key in keys]
    except Exception:  # no logging sections: fileConfig() itself will fail, and say so
        return []


class Visit:
    """One database env.py configured Alembic for, and what to undo when env.py is done."""

    def __init__(self, label: str, multidb: bool, connection: Connection) -> None:
        self.label = label
        self.connection = connection
        self.raw = dbapi_connection(connection)
        self.progress = Progress(label, multidb)
        self.restores: list[Restore] = []
        self.mark: RevisionMark | None = None
        self.timeouts: _timeouts.Timeouts | None = None
        self.done = False

    def finish(self, raw: DBAPIConnection) -> None:
        """Undo, last first, what was set up; ``raw`` is the driver's connection."""
        if self.done:
            return
        self.done = True
        for restore in reversed(self.restores):
            restore(raw)


@contextlib.contextmanager
def _read_once(environment: EnvironmentContext, rows: tuple[str, ...] | None) -> Iterator[None]:
    """Give Alembic the version rows the guard has just read, the first time it asks for them.

    ``MigrationContext.run_migrations`` reads them again first thing (a look for the table
    and a SELECT: two round trips on a server), in the same connection and transaction, with
    nothing written in between.  Only that one read is served; a retry reads them anew.
    """
    if rows is None:
        yield
        return
    context = environment.get_context()

    def once() -> tuple[str, ...]:
        vars(context).pop("get_current_heads", None)
        return rows

    context.get_current_heads = once  # type: ignore[method-assign]
    try:
        yield
    finally:
        vars(context).pop("get_current_heads", None)


class RunGuard:
    """The guarantees for one command's runs of env.py (see the module's documentation)."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.command: str | None = config.attributes.get(ATTR_COMMAND)
        self.writes = writes(config)
        record = current_record()
        #: ``Migrate(lock_timeout=...)``, for an env.py that passes none to ``configure()``.
        self.lock_timeout_setting = (
            record.configure_args.get("lock_timeout") if record is not None else None
        )
        #: The same for the settings of :mod:`.timeouts`; the command line's come first.
        self.timeout_settings = {
            setting.name: record.configure_args.get(setting.name)
            for setting in _timeouts.SETTINGS
        } if record is not None else {}
        self.command_line_timeouts: dict[str, object] = (
            config.attributes.get(_timeouts.ATTR_TIMEOUTS) or {}
        )
        self.visits: list[Visit] = []
        self._pools: list[tuple[Pool, Checkin]] = []
        self._steps: StepsFunction | None = None
        self._steps_known = False
        named = _file_config_loggers(config)
        self._logging = _LoggingState(named) if named is not None else None
        #: Lock keys this run holds: two databases on one SQLite file (or one server database)
        #: take the lock once, instead of waiting for themselves.
        self._held: set[tuple[str, str]] = set()
        #: The runs of env.py (``EnvironmentContext`` objects) that called run_migrations().
        self.ran: list[EnvironmentContext] = []
        self.closed = False

    # -- the hooks ------------------------------------------------------------------------------

    def configure(
        self, environment: EnvironmentContext, original: Callable[..., None], kwargs: Options
    ) -> None:
        """``context.configure(**kwargs)``, with the guards of the connection it names."""
        if self._logging is not None:
            self._logging.restore()
        timeout_setting = kwargs.pop("lock_timeout", self.lock_timeout_setting)
        configured = dict(self.timeout_settings)
        for setting in _timeouts.SETTINGS:
            if setting.name in kwargs:
                configured[setting.name] = kwargs.pop(setting.name)
        options = _alembic.context_options(environment)
        token = kwargs.get("upgrade_token", options.get("upgrade_token"))
        name = database_of_token(token)
        multidb = token not in (None, "upgrades")
        label = (name or "default") if name is not None else str(token)
        version_table = (
            kwargs.get("version_table") or options.get("version_table") or "alembic_version"
        )
        kwargs["include_name"] = excluded_from_autogenerate(
            version_table, kwargs.get("include_name")
        )
        connection = kwargs.get("connection")
        url = connection.engine.url if connection is not None else kwargs.get("url")
        self.config.attributes[ATTR_DATABASE] = (label, safe_url(url) if url else "?")
        if connection is None or environment.is_offline_mode():
            original(**kwargs)
            return
        self._refuse_shared_sqlite_file(label, connection)
        visit = Visit(label, multidb, connection)
        self.visits.append(visit)
        self._watch(connection)
        try:
            self._establish(environment, visit, kwargs, options, timeout_setting, configured)
        except BaseException:
            visit.finish(visit.raw)
            raise
        original(**kwargs)

    def run_migrations(
        self, environment: EnvironmentContext, original: Callable[..., None], kwargs: Options
    ) -> None:
        """``context.run_migrations(**kwargs)``; per database in a multi-database folder."""
        rows = self._require_sound_version_rows(environment)
        if "engine_name" in kwargs:
            # Old revisions (plain upgrade(), or 2.x's strict dispatch) run per database.
            from .revisions import run_per_database

            run_per_database(environment.script)
        connection = environment.get_context().connection
        visit = next(
            (visit for visit in reversed(self.visits)
             if visit.connection is connection and not visit.done),
            None,
        )
        attempt = 1
        while True:
            try:
                with _read_once(environment, rows if attempt == 1 else None):
                    original(**kwargs)
                return
            except Exception as error:
                if visit is None or visit.timeouts is None:
                    raise
                if not self._retry(visit, error, attempt):
                    raise
            attempt += 1

    def _retry(self, visit: Visit, error: Exception, attempt: int) -> bool:
        """After ``error`` stopped attempt ``attempt`` of a run: True to try again (after a
        pause), False for an error that is not about timeouts; raises the timeout's error when
        the revision cannot, or may no more, be tried again."""
        timeouts = visit.timeouts
        assert timeouts is not None
        revision = visit.progress.current or "a revision"
        whole_run = visit.connection.in_transaction()
        progress = visit.progress
        at = progress.first if whole_run else (progress.last or progress.first)
        if _timeouts.ran_too_long(error):
            raise _timeouts.stopped(error, revision, at or "?", timeouts) from error
        if not _timeouts.waited_for_a_lock(error):
            return False
        reason = None
        if whole_run:
            reason = (
                "the whole run is one transaction, which cannot be tried again revision by "
                "revision"
            )
        elif visit.mark is not None and not visit.mark.can_retry():
            reason = "part of the revision had been committed"
        if reason is not None or attempt > timeouts.retries:
            raise _timeouts.gave_up(
                error, revision, at or "?", timeouts, attempt, reason
            ) from error
        pause = timeouts.pause(attempt + 1)
        _timeouts.announce_retry(revision, timeouts, attempt + 1, pause)
        progress.current = None
        _timeouts.sleep(pause)
        return True

    def ended(self, environment: EnvironmentContext) -> None:
        """A run of env.py is over: refuse one that never ran the migrations (an empty env.py,
        or one that lost its last lines), which would report success having done nothing."""
        if any(ran is environment for ran in self.ran):
            return
        from ..folder import folder_of

        env = folder_of(self.config).env
        where = os.path.relpath(env.path) if env is not None else "env.py"
        if env is not None and not env.text.strip():
            problem = f"env.py ({where}) is empty, so it runs no migrations"
        else:
            problem = (
                f"env.py ({where}) ended without running the migrations (it never called "
                "context.run_migrations() or flask_migrate.runtime.run_migrations())"
            )
        raise MigrateError(
            f"{problem}; restore it (e.g. from version control), or run 'db doctor --fix' to "
            "write the current template's (the old file is kept)"
        )

    # -- guards ---------------------------------------------------------------------------------

    def _require_sound_version_rows(
        self, environment: EnvironmentContext
    ) -> tuple[str, ...] | None:
        """Refuse a version table whose rows no history can have (Alembic would stop with an
        AssertionError or a TypeError, or act on them): a NULL, empty or non-text
        version_num, or two revisions of one line of history.  Returns the rows read, or
        None when there are none to read."""
        context = environment.get_context()
        if environment.is_offline_mode() or getattr(context, "purge", False):
            return None  # no rows to read, or about to be replaced: 'stamp --purge' is the remedy
        rows = context.get_current_heads()
        label = self.config.attributes.get(ATTR_DATABASE, ("default",))[0]
        table = context.version_table
        remedy = (
            "run 'db stamp --purge REVISION' with the revision the schema really matches (see "
            "'db history')"
        )
        for row in rows:
            if row is not None and not isinstance(row, str):
                # A column that cannot hold a revision id: not a table Alembic made.
                raise MigrateError(
                    f"the {label} database's {table} table holds {row!r} (not text) as its "
                    "version_num, so it is not Alembic's version table; rename that table, or "
                    "give Flask-Migrate's another name with Migrate(app, db, "
                    "version_table='...') and 'db stamp' the revision the schema is at"
                )
            if row is None or not row.strip():
                shown = "NULL" if row is None else "an empty string"
                raise MigrateError(
                    f"the {label} database's {table} table holds {shown} as its version_num, "
                    f"which is no revision id; {remedy}"
                )
        if len(rows) > 1:
            line = _same_line(environment.script, rows)
            if line is not None:
                older, newer = line
                raise MigrateError(
                    f"the {label} database's {table} table holds both {older} and {newer}, "
                    f"which are on one line of history ({older} comes before {newer}), where "
                    f"only the latest applied revision belongs; run 'db stamp --purge {newer}' "
                    f"if the schema matches {newer} (see 'db history')"
                )
        return rows

    def _establish(
        self, environment: EnvironmentContext, visit: Visit, kwargs: Options, options: Options,
        timeout_setting: float | None, configured: dict[str, object],
    ) -> None:
        connection = visit.connection
        dialect = connection.dialect.name
        # Read only by a run that takes the lock: a bad value must not stop 'current'.
        timeout = lock_timeout(timeout_setting) if self.writes else 0.0
        version_table = (
            kwargs.get("version_table") or options.get("version_table") or "alembic_version"
        )
        schema = kwargs.get("version_table_schema") or options.get("version_table_schema")
        if self.writes:
            name = lock_name(version_table, schema, connection.engine.url.database)
            url = connection.engine.url
            key = (name, f"{url.get_backend_name()}://{url.host or ''}:{url.port or ''}")
            if key not in self._held:
                release = acquire(connection, visit.label, name, timeout)
                if release is not None:
                    self._held.add(key)
                    visit.restores.append(functools.partial(self._release, key, release))
        if dialect == "sqlite":
            extra, restore = sqlite_transactions(
                connection, label=visit.label, writes=self.writes, timeout=timeout
            )
            visit.restores.append(restore)
            kwargs.update(extra)
        elif (
            dialect == "postgresql" and self.writes and "transaction_per_migration" not in kwargs
            and not connection.in_transaction()
            # A throwaway database (db test's) that nothing else uses and that is dropped
            # afterwards: durability is of no use there, and a commit per step costs a round
            # trip; db test commits now and then by itself (testing.COMMIT_EVERY).
            and not self.config.attributes.get(ATTR_THROWAWAY)
        ):
            extra, restore = postgresql_transactions(connection)
            visit.restores.append(restore)
            kwargs.update(extra)
        if self.writes:
            # Read on every database, so that a bad value is one line on SQLite too.
            timeouts = _timeouts.resolve(self.command_line_timeouts, configured)
        if self.writes and dialect in ("postgresql", "mysql", "mariadb"):
            visit.timeouts = timeouts
            session_restore = _timeouts.apply(connection, visit.raw, visit.timeouts)
            if session_restore is not None:
                visit.restores.append(session_restore)
        if not self.writes:
            # A reader leaves the database alone: Alembic's autogenerate and check would create
            # the version table.
            kwargs.setdefault("dont_mutate", True)
            return
        mark = RevisionMark(
            connection, visit.raw, version_table, schema, self.command, visit.progress.where
        )
        visit.mark = mark
        visit.restores.append(lambda raw: mark.finish())
        callbacks = kwargs.get("on_version_apply") or ()
        if callable(callbacks):
            callbacks = (callbacks,)
        kwargs["on_version_apply"] = (*callbacks, mark.applied, visit.progress.applied)
        steps = self._steps_function(environment, options)
        if steps is not None:
            options["fn"] = mark.wrap(visit.progress.wrap(steps))

    def _refuse_shared_sqlite_file(self, label: str, connection: Connection) -> None:
        """Two databases of one run on one SQLite file would wait for each other's write lock
        (an env.py that keeps every database's transaction open until the end)."""
        url = connection.engine.url
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return
        path = os.path.realpath(database)
        for visit in self.visits:
            other = visit.connection.engine.url
            if (
                not visit.done and other.get_backend_name() == "sqlite" and other.database
                and os.path.realpath(other.database) == path
            ):
                raise MigrateError(
                    f"the {visit.label} and {label} databases are the same SQLite file "
                    f"({url.database}), so they would share one version table and wait for "
                    "each other; give each database a file of its own"
                )

    def _release(self, key: tuple[str, str], release: Release, raw: DBAPIConnection) -> None:
        self._held.discard(key)
        release(raw)

    def _steps_function(
        self, environment: EnvironmentContext, options: Options
    ) -> StepsFunction | None:
        """The command's own step generator, before any visit replaced it; for ``upgrade`` to
        the heads, one that knows from a memo when there is nothing to do."""
        if not self._steps_known:
            self._steps_known = True
            steps = options.get("fn")
            if (
                steps is not None
                and self.command == "upgrade"
                and options.get("destination_rev") in ("head", "heads")
            ):
                steps = upgrade_to_heads(environment.script, steps)
            self._steps = steps
        return self._steps

    def _watch(self, connection: Connection) -> None:
        """Finish a visit when its connection goes back to the pool (after env.py's commit)."""
        pool = connection.engine.pool
        if any(watched is pool for watched, _ in self._pools):
            return

        def checkin(raw: DBAPIConnection | None, record: ConnectionPoolEntry) -> None:
            for visit in self.visits:
                if visit.raw is raw and not visit.done:
                    visit.finish(raw)

        event.listen(pool, "checkin", checkin)
        self._pools.append((pool, checkin))

    # -- the end --------------------------------------------------------------------------------

    def close(self, succeeded: bool) -> None:
        """Finish every visit env.py left open, stop watching pools; summaries if it worked."""
        for visit in self.visits:
            visit.finish(visit.raw)
        for pool, checkin in self._pools:
            with contextlib.suppress(Exception):
                event.remove(pool, "checkin", checkin)
        self._pools.clear()
        if succeeded:
            for visit in self.visits:
                visit.progress.summary()
        self.closed = True
        if self._logging is not None:
            self._logging.restore()


def _same_line(script: ScriptDirectory, rows: Sequence[str]) -> tuple[str, str] | None:
    """Two rows of which the first comes before the second in the history, if any.

    Rows the folder does not have are left to Alembic, which says so.
    """
    for newer in rows:
        ancestors: set[str] = set()
        todo = [newer]
        while todo:
            try:
                revision = script.get_revision(todo.pop())
            except Exception:
                return None
            if revision is None:
                continue
            down = revision.down_revision
            for parent in (down,) if isinstance(down, str) else (down or ()):
                if parent not in ancestors:
                    ancestors.add(parent)
                    todo.append(parent)
        older = next((row for row in rows if row in ancestors), None)
        if older is not None:
            return older, newer
    return None


def _configure_hook(
    environment: EnvironmentContext, original: Callable[..., None], kwargs: Options
) -> None:
    guard = _guard_of(environment.config)
    if guard is None:
        original(**kwargs)
    else:
        guard.configure(environment, original, kwargs)


def _run_hook(
    environment: EnvironmentContext, original: Callable[..., None], kwargs: Options
) -> None:
    active: RunGuard | None = getattr(environment.config, "attributes", {}).get(ATTR_GUARD)
    if active is not None and not active.closed:
        active.ran.append(environment)  # an env.py that opted out ran the migrations too
    guard = _guard_of(environment.config)
    if guard is None:
        original(**kwargs)
    else:
        guard.run_migrations(environment, original, kwargs)


def _end_hook(environment: EnvironmentContext) -> None:
    active: RunGuard | None = getattr(environment.config, "attributes", {}).get(ATTR_GUARD)
    if active is not None and not active.closed:
        active.ended(environment)


def _guard_of(config: Config | None) -> RunGuard | None:
    attributes = getattr(config, "attributes", {})
    if attributes.get(OPT_OUT) is False:
        return None
    guard: RunGuard | None = attributes.get(ATTR_GUARD)
    return guard if guard is not None and not guard.closed else None


@contextlib.contextmanager
def guarded(config: Config) -> Iterator[RunGuard]:
    """Establish the guarantees for every run of env.py with ``config`` inside the block.

    Re-entrant: inside a block that already guards ``config`` it adds nothing.
    """
    current: RunGuard | None = config.attributes.get(ATTR_GUARD)
    if current is not None:
        yield current
        return
    _alembic.install_environment_hooks(_configure_hook, _run_hook, _end_hook)
    graphmemo.install()
    guard = RunGuard(config)
    config.attributes[ATTR_GUARD] = guard
    succeeded = False
    try:
        yield guard
        succeeded = True
    finally:
        del config.attributes[ATTR_GUARD]
        guard.close(succeeded)
        if succeeded:
            graphmemo.flush(config)
