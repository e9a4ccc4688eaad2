"""``db test``: the migration tests, run on a throwaway database.

:func:`throwaway` gives every database of the application a stand-in for the length of one
command: a SQLite file in a temporary folder, a database created (and dropped afterwards) on
the server the application's URL names, or the empty database of ``--database``.  The
application's own databases are never connected to.

:func:`run_suite` then runs the folder's env.py once (whichever env.py it is: every database of
a multi-database folder is visited, as by ``upgrade``) with a step function of its own.  For
each database it applies every revision from base to head, comparing nothing yet but keeping a
snapshot of the schema after each one (:func:`snapshot`); compares the models with the schema
at the head, as ``check`` does; then walks back down, reverting each revision, applying it
again and reverting it again, and compares the schema after each of those steps with the
snapshot it must equal; at base only the version table may be left.  All of it in one
connection and one run of env.py per database, which is what makes it fast.

The outcome is a :class:`TestReport`, one :class:`Outcome` per test; the command line prints
it (:meth:`TestReport.render`).
"""
from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TextIO, TypeVar

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script, ScriptDirectory

from .config import ATTR_DATABASE, ATTR_THROWAWAY, Config
from .errors import MigrateError, UsageError, describe, mask_passwords
from .folder import folder_of
from .runtime import binds
from .runtime.transactions import dbapi_connection
from .runtime.marks import table_name as mark_table_name

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Dialect, Engine, Inspector
    from sqlalchemy.engine.interfaces import (
        ReflectedCheckConstraint,
        ReflectedColumn,
        ReflectedForeignKeyConstraint,
        ReflectedIndex,
        ReflectedPrimaryKeyConstraint,
        ReflectedUniqueConstraint,
    )

    from .extension import MigrateRecord

_T = TypeVar("_T")

#: What a throwaway database on a server is called: ``<name>_fmtest_<random>``.
THROWAWAY_INFIX = "_fmtest_"

#: PostgreSQL: the steps of the tests are committed in batches of this many (see
#: :meth:`_DatabaseSuite._commit_now_and_then`).
COMMIT_EVERY = 50

SINGLE_HEAD = "single head"
UPGRADE = "upgrade from base to head"
MODELS = "models match the schema"
ROUND_TRIPS = "round trip of every revision"
BASE = "downgrade to base leaves only the version table"


# -- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One test of one database: passed (True), failed (False) or not run (None)."""

    test: str
    passed: bool | None
    detail: str = ""
    #: The database (its label, ``default`` for the default one); None for the folder itself.
    database: str | None = None

    @property
    def word(self) -> str:
        return {True: "PASS", False: "FAIL", None: "SKIP"}[self.passed]

    def line(self, named: bool) -> str:
        """``PASS single head``, ``FAIL [users] round trip of 3f2a (add orders): ...``."""
        where = f"[{self.database}] " if named and self.database is not None else ""
        detail = f": {self.detail}" if self.detail else ""
        return mask_passwords(f"{self.word} {where}{self.test}{detail}")


class TestReport(list[Outcome]):
    """Every :class:`Outcome`, in order; ``exit_code`` is 1 when one of them failed."""

    __test__ = False  # not a test class, for pytest

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    @property
    def failures(self) -> list[Outcome]:
        return [outcome for outcome in self if outcome.passed is False]

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        named = len({outcome.database for outcome in self if outcome.database}) > 1
        return [outcome.line(named) for outcome in self]

    @property
    def error(self) -> None:
        return None

    def render(self, out: TextIO) -> None:
        """One line per test, then the totals."""
        for line in self.lines():
            print(line, file=out)
        failed = len(self.failures)
        print(f"{len(self) - failed} passed, {failed} failed" if failed
              else f"all {len(self)} passed", file=out)


# -- throwaway databases ------------------------------------------------------------------------


def _server_name(url: sa.engine.URL) -> str:
    base = re.sub(r"\W", "_", url.database or "db")[:40]
    return f"{base}{THROWAWAY_INFIX}{secrets.token_hex(4)}"


def _admin_urls(url: sa.engine.URL) -> list[sa.engine.URL]:
    """Where to connect to create a database on the server of ``url``."""
    if url.get_backend_name() == "postgresql":
        return [url.set(database=name) for name in ("postgres", "template1")]
    return [url.set(database=None)]


class _ServerDatabase:
    """A database created on a server for one run, and dropped after it."""

    def __init__(self, url: sa.engine.URL) -> None:
        self.name = _server_name(url)
        admin: Engine | None = None
        problem: Exception | None = None
        for admin_url in _admin_urls(url):
            engine = sa.create_engine(
                admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
            )
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text(f"CREATE DATABASE {self._quoted(engine)}"))
            except sa.exc.DBAPIError as error:
                problem = error
                engine.dispose()
                continue
            admin = engine
            break
        if admin is None:
            raise MigrateError(
                f"cannot create a throwaway database on the server of {binds.safe_url(url)}: "
                f"{describe(problem) if problem else 'no way to connect'}; let its user create "
                "databases (PostgreSQL: CREATEDB), or pass --database with the URL of an empty "
                "database to test on"
            )
        self.admin = admin
        self.url = url.set(database=self.name)

    def _quoted(self, engine: Engine) -> str:
        return engine.dialect.identifier_preparer.quote(self.name)

    def drop(self) -> None:
        with self.admin.connect() as connection:
            statement = f"DROP DATABASE IF EXISTS {self._quoted(self.admin)}"
            version = connection.dialect.server_version_info or ()
            if connection.dialect.name == "postgresql" and tuple(version) >= (13,):
                statement += " WITH (FORCE)"  # whatever env.py left connected
            connection.execute(sa.text(statement))
        self.admin.dispose()


def _require_empty(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            found = sorted(sa.inspect(connection).get_table_names())
    except sa.exc.DBAPIError as error:
        raise MigrateError(
            f"cannot connect to the --database {binds.safe_url(url)}: {describe(error)}"
        ) from error
    finally:
        engine.dispose()
    if found:
        shown = ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
        raise UsageError(
            f"the --database {binds.safe_url(url)} is not empty (tables {shown}); db test "
            "creates and drops tables, so give it an empty database, or leave --database out "
            "for a throwaway one"
        )


@contextlib.contextmanager
def throwaway(record: MigrateRecord, database: str | None = None) -> Iterator[dict[str, str]]:
    """For the length of the block, every database of the application is a throwaway one.

    Yields database name -> masked URL of its stand-in.  Temporary files and databases are
    removed afterwards, also after an error, Ctrl-C or SIGTERM.

    :param database: the URL of an empty database to use instead (one-database applications).
    """
    names = binds.database_names(record, multidb=True)
    urls = {name: binds.engine(record, name).url for name in names}
    replaced: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if database is not None:
            if len(names) != 1:
                raise UsageError(
                    f"--database names one database and this application has {len(names)} "
                    f"({', '.join(name or 'default' for name in names)}); leave --database out "
                    "to have a throwaway database made for each"
                )
            try:
                given = sa.engine.make_url(database)
            except sa.exc.ArgumentError:
                raise UsageError(
                    "--database is not a database URL; write it as e.g. "
                    "postgresql://user:password@host/name or sqlite:///path.db"
                ) from None
            own = urls[names[0]]
            if given.render_as_string(hide_password=False) == own.render_as_string(
                hide_password=False
            ):
                raise UsageError(
                    "--database names the application's own database; db test never runs on "
                    "it: give the URL of an empty database, or leave --database out"
                )
            _require_empty(database)
            replaced[names[0]] = given.render_as_string(hide_password=False)
        else:
            folder = None
            for name, url in urls.items():
                if url.get_backend_name() == "sqlite":
                    if folder is None:
                        folder = tempfile.mkdtemp(prefix="flask-migrate-test-")
                        stack.callback(shutil.rmtree, folder, True)
                    path = os.path.join(folder, f"{name or 'default'}.db")
                    replaced[name] = url.set(database=path, query={}).render_as_string(
                        hide_password=False
                    )
                else:
                    created = _ServerDatabase(url)
                    stack.callback(created.drop)
                    replaced[name] = created.url.render_as_string(hide_password=False)
        stack.enter_context(binds.databases_replaced(record, replaced))
        yield {name: binds.safe_url(url) for name, url in replaced.items()}


# -- schema snapshots ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    """What reflection says about one table, in a form that compares."""

    columns: tuple[tuple[str, str, bool, str | None], ...]  # name, type, nullable, default
    primary_key: tuple[str, ...]
    indexes: frozenset[tuple[str | None, tuple[str, ...], bool]]
    uniques: frozenset[tuple[str | None, tuple[str, ...]]]
    foreign_keys: frozenset[tuple[str | None, tuple[str, ...], str, tuple[str, ...]]]
    checks: frozenset[tuple[str | None, str]]


Schema = Mapping[str, Table]


def _type(column: ReflectedColumn, dialect: Dialect) -> str:
    try:
        return str(column["type"].compile(dialect=dialect))
    except Exception:  # a type reflection could not name
        return repr(column["type"])


def _names(values: Iterable[object] | None) -> tuple[str, ...]:
    return tuple(str(value) for value in values or () if value is not None)


def _table(
    dialect: Dialect,
    columns: Iterable[ReflectedColumn],
    pk: ReflectedPrimaryKeyConstraint | None,
    indexes: Iterable[ReflectedIndex],
    uniques: Iterable[ReflectedUniqueConstraint],
    fks: Iterable[ReflectedForeignKeyConstraint],
    checks: Iterable[ReflectedCheckConstraint],
) -> Table:
    return Table(
        columns=tuple(
            (column["name"], _type(column, dialect), bool(column.get("nullable")),
             None if column.get("default") is None else str(column["default"]))
            for column in columns
        ),
        primary_key=_names(pk.get("constrained_columns") if pk else None),
        indexes=frozenset(
            (index.get("name"), _names(index.get("column_names")), bool(index.get("unique")))
            for index in indexes
            # Some dialects list the index that backs a unique constraint as an index too.
            if not index.get("duplicates_constraint")
        ),
        uniques=frozenset(
            (unique.get("name"), _names(unique.get("column_names"))) for unique in uniques
        ),
        foreign_keys=frozenset(
            (fk.get("name"), _names(fk.get("constrained_columns")), str(fk.get("referred_table")),
             _names(fk.get("referred_columns")))
            for fk in fks
        ),
        checks=frozenset(
            (check.get("name"), " ".join(str(check.get("sqltext")).split())) for check in checks
        ),
    )


def _optional(method: Callable[[str], list[_T]], table: str) -> list[_T]:
    """Reflection a dialect may not offer (check constraints, say): empty when it does not."""
    try:
        return method(table)
    except NotImplementedError:
        return []


#: The whole schema of PostgreSQL's current schema in one catalog query: a row per table, per
#: column (in order), per constraint and per index that backs none.  The columns of a row:
#: table, kind (0 table, 1 column, 2 constraint, 3 index), position, name, then
#: kind 1: type, nullable, default, identity or generated ('a', 'd', 's' or '');
#: kind 2: constraint type, referred table or check/exclusion text, columns, referred columns;
#: kind 3: unique, key columns (or expressions).
_POSTGRESQL_SCHEMA = """
WITH t AS (
    SELECT c.oid, c.relname FROM pg_catalog.pg_class c
    WHERE c.relnamespace = pg_catalog.current_schema()::pg_catalog.regnamespace
      AND c.relkind IN ('r', 'p')
)
SELECT t.relname, 0, 0, t.relname, NULL, NULL, NULL, NULL, NULL::text[], NULL::text[]
FROM t
UNION ALL
SELECT t.relname, 1, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       NOT a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid),
       a.attidentity::text || a.attgenerated::text, NULL, NULL
FROM t
JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
UNION ALL
SELECT t.relname, 2, 0, co.conname, co.contype::text, NULL,
       CASE co.contype
           WHEN 'f' THEN co.confrelid::pg_catalog.regclass::text
           WHEN 'c' THEN pg_catalog.pg_get_expr(co.conbin, co.conrelid, true)
           WHEN 'p' THEN NULL WHEN 'u' THEN NULL
           ELSE pg_catalog.pg_get_constraintdef(co.oid, true)
       END,
       NULL,
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(co.conkey) WITH ORDINALITY k(n, o)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.n
             ORDER BY k.o),
       ARRAY(SELECT a.attname::text FROM pg_catalog.unnest(co.confkey) WITH ORDINALITY k(n, o)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = co.confrelid AND a.attnum = k.n
             ORDER BY k.o)
FROM t JOIN pg_catalog.pg_constraint co ON co.conrelid = t.oid AND co.contype <> 'n'
UNION ALL
SELECT t.relname, 3, 0, ic.relname, NULL, i.indisunique, NULL, NULL,
       ARRAY(SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)
             FROM pg_catalog.generate_series(1, i.indnkeyatts) k ORDER BY k),
       NULL
FROM t
JOIN pg_catalog.pg_index i ON i.indrelid = t.oid
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_constraint x WHERE x.conindid = i.indexrelid
      AND x.conrelid = t.oid
)
ORDER BY 1, 2, 3, 4
"""

#: How PostgreSQL's identity and generated columns read in a column's default.
_GENERATED = {
    "a": "GENERATED ALWAYS AS IDENTITY",
    "d": "GENERATED BY DEFAULT AS IDENTITY",
}


def _postgresql_table(parts: tuple[tuple[Any, ...], ...]) -> Table:
    """A :class:`Table` from its rows of :data:`_POSTGRESQL_SCHEMA` (without the table name)."""
    columns = []
    primary_key: tuple[str, ...] = ()
    indexes, uniques, foreign_keys, checks = set(), set(), set(), set()
    for kind, _, name, first, second, third, fourth, names, referred in parts:
        if kind == 1:
            default = third
            if fourth == "s":
                default = f"GENERATED ALWAYS AS ({third}) STORED"
            elif fourth:
                default = _GENERATED.get(fourth, fourth)
            columns.append((name, first, bool(second), default))
        elif kind == 2:
            if first == "p":
                primary_key = tuple(names)
            elif first == "u":
                uniques.add((name, tuple(names)))
            elif first == "f":
                foreign_keys.add((name, tuple(names), third, tuple(referred)))
            else:  # check, exclusion, constraint trigger
                checks.add((name, " ".join(str(third).split())))
        elif kind == 3:
            indexes.add((name, tuple(names), bool(second)))
    return Table(
        columns=tuple(columns), primary_key=primary_key, indexes=frozenset(indexes),
        uniques=frozenset(uniques), foreign_keys=frozenset(foreign_keys),
        checks=frozenset(checks),
    )


class Snapshots:
    """Takes snapshots of one database's schema through one connection.

    A snapshot is taken after every step of the tests (three times per revision), so it must
    be cheap:

    - PostgreSQL: one catalog query (:data:`_POSTGRESQL_SCHEMA`) reads every table, column,
      constraint and index at once; the Inspector takes about ten queries per snapshot with
      SQLAlchemy 2's ``get_multi_*``, and several per table with SQLAlchemy 1.4.
    - SQLite: a table's reflection depends only on the SQL that created it and its indexes
      (``sqlite_master``), so tables whose SQL did not change are not reflected again.
    - Elsewhere, the Inspector (``get_multi_*`` where SQLAlchemy has them).

    Either way a table whose description did not change since an earlier snapshot is the same
    :class:`Table` object, which makes comparing two snapshots cheap too.
    """

    def __init__(self, connection: Connection, ignored: set[str]) -> None:
        self.connection = connection
        self.ignored = ignored
        self.dialect = connection.dialect
        self._cache: dict[tuple[Any, ...], Table] = {}

    def take(self) -> dict[str, Table]:
        if self.dialect.name == "postgresql":
            return self._postgresql()
        inspector = sa.inspect(self.connection)
        if self.dialect.name == "sqlite":
            return self._sqlite(inspector)
        if hasattr(inspector, "get_multi_columns"):
            return self._multi(inspector)
        return {name: self._reflect(inspector, name) for name in self._tables(inspector)}

    def _tables(self, inspector: Inspector) -> list[str]:
        return [name for name in inspector.get_table_names() if name not in self.ignored]

    def _reflect(self, inspector: Inspector, name: str) -> Table:
        return _table(
            self.dialect, inspector.get_columns(name), inspector.get_pk_constraint(name),
            inspector.get_indexes(name), _optional(inspector.get_unique_constraints, name),
            inspector.get_foreign_keys(name), _optional(inspector.get_check_constraints, name),
        )

    def _postgresql(self) -> dict[str, Table]:
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for row in self.connection.exec_driver_sql(_POSTGRESQL_SCHEMA):
            if row[0] not in self.ignored:
                by_table.setdefault(row[0], []).append(tuple(
                    tuple(value) if isinstance(value, list) else value for value in row[1:]
                ))
        found = {}
        for table, parts in by_table.items():
            key = (table, tuple(parts))
            if key not in self._cache:
                self._cache[key] = _postgresql_table(key[1])
            found[table] = self._cache[key]
        return found

    def _sqlite(self, inspector: Inspector) -> dict[str, Table]:
        rows = self.connection.exec_driver_sql(
            "SELECT tbl_name, type, name, sql FROM sqlite_master "
            "WHERE type IN ('table', 'index') ORDER BY tbl_name, type, name"
        ).fetchall()
        by_table: dict[str, list[tuple[Any, ...]]] = {}
        for table, kind, name, sql in rows:
            by_table.setdefault(table, []).append((kind, name, sql))
        found = {}
        for table, parts in by_table.items():
            if table in self.ignored or table.startswith("sqlite_"):
                continue
            key = (table, tuple(parts))
            if key not in self._cache:
                self._cache[key] = self._reflect(inspector, table)
            found[table] = self._cache[key]
        return found

    def _multi(self, inspector: Inspector) -> dict[str, Table]:
        names = self._tables(inspector)
        if not names:
            return {}

        def multi(kind: str) -> dict[str, Any]:
            method = getattr(inspector, f"get_multi_{kind}")
            try:
                found = method(filter_names=names)
            except NotImplementedError:
                return {}
            return {key[1]: value for key, value in found.items()}

        columns, pks, indexes = multi("columns"), multi("pk_constraint"), multi("indexes")
        uniques, fks = multi("unique_constraints"), multi("foreign_keys")
        checks = multi("check_constraints")
        return {
            name: _table(
                self.dialect, columns.get(name, ()), pks.get(name), indexes.get(name, ()),
                uniques.get(name, ()), fks.get(name, ()), checks.get(name, ()),
            )
            for name in names
        }


def differences(expected: Schema, found: Schema, extra: str = "is left") -> list[str]:
    """What differs from ``expected`` in ``found``, in words: ``column orders.total is left``."""
    said = []
    for name in sorted(set(found) - set(expected)):
        said.append(f"table {name} {extra}")
    for name in sorted(set(expected) - set(found)):
        said.append(f"table {name} is missing")
    for name in sorted(set(expected) & set(found)):
        if expected[name] != found[name]:
            said += _table_differences(name, expected[name], found[name], extra)
    return said


def _table_differences(name: str, expected: Table, found: Table, extra: str) -> list[str]:
    said = []
    old = {column[0]: column for column in expected.columns}
    new = {column[0]: column for column in found.columns}
    for column in [column for column in new if column not in old]:
        said.append(f"column {name}.{column} {extra}")
    for column in [column for column in old if column not in new]:
        said.append(f"column {name}.{column} is missing")
    for column in [column for column in old if column in new and old[column] != new[column]]:
        _, old_type, old_null, old_default = old[column]
        _, new_type, new_null, new_default = new[column]
        changes = []
        if old_type != new_type:
            changes.append(f"type {new_type}, was {old_type}")
        if old_null != new_null:
            changes.append("nullable" if new_null else "NOT NULL")
        if old_default != new_default:
            changes.append(f"default {new_default}, was {old_default}")
        said.append(f"column {name}.{column} changed ({', '.join(changes)})")
    if expected.primary_key != found.primary_key:
        said.append(f"primary key of {name} is ({', '.join(found.primary_key)}), was "
                    f"({', '.join(expected.primary_key)})")
    kinds = (
        ("index", expected.indexes, found.indexes),
        ("unique constraint", expected.uniques, found.uniques),
        ("foreign key", expected.foreign_keys, found.foreign_keys),
        ("check constraint", expected.checks, found.checks),
    )
    for kind, old_items, new_items in kinds:
        for item in sorted(new_items - old_items, key=repr):
            said.append(f"{kind} {_item(item)} on {name} {extra}")
        for item in sorted(old_items - new_items, key=repr):
            said.append(f"{kind} {_item(item)} on {name} is missing")
    return said


def _item(item: tuple[Any, ...]) -> str:
    name, rest = item[0], item[1]
    shown = f"({', '.join(rest)})" if isinstance(rest, tuple) else str(rest)
    return f"{name} {shown}" if name else shown


# -- the run ------------------------------------------------------------------------------------


class _StepFailed(Exception):
    """A revision's upgrade() or downgrade() raised during the tests."""

    def __init__(self, database: str, original: BaseException) -> None:
        super().__init__(str(original))
        self.database = database
        self.original = original


def _label(revision: Script) -> str:
    doc = (revision.doc or "").strip().splitlines()
    return f"{revision.revision} ({doc[0]})" if doc else revision.revision


@dataclass
class _DatabaseSuite:
    """The tests of one database, as the steps of one run of env.py."""

    database: str
    script: ScriptDirectory
    order: list[str]
    report: TestReport
    #: The test in progress, the revision of its current step and what that step does.
    test: str = UPGRADE
    revision: str = ""
    doing: str = ""
    _steps_run: int = 0

    def add(self, test: str, passed: bool | None, detail: str = "") -> None:
        self.report.append(Outcome(test, passed, detail, self.database))

    def _step(self, revision: Script, upgrade: bool, doing: str) -> RevisionStep:
        step = RevisionStep(self.script.revision_map, revision, upgrade)
        function = step.migration_fn
        database = self.database

        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as error:
                raise _StepFailed(database, error) from error

        step.migration_fn = run
        self.revision, self.doing = _label(revision), doing
        return step

    def failed(self, error: _StepFailed) -> None:
        """The step in progress raised: its test fails, and the tests after it do not run."""
        reason = describe(error.original)
        if self.test == ROUND_TRIPS:
            self.add(f"round trip of {self.revision}", False, f"{self.doing} failed: {reason}")
        else:
            self.add(self.test, False, f"{self.revision} failed: {reason}")
        self._not_run(f"not run after the failure of {self.revision}")

    def _not_run(self, why: str) -> None:
        tests = (UPGRADE, MODELS, ROUND_TRIPS, BASE)
        for test in tests[tests.index(self.test) + 1:]:
            self.add(test, None, why)

    def _commit_now_and_then(self, connection: Connection) -> None:
        """On PostgreSQL the steps run in one transaction (see ``runtime.guard``): commit it
        every :data:`COMMIT_EVERY` steps, so that the locks of thousands of tables created and
        dropped never fill the server's lock table.  Through the driver, between two steps, as
        nothing in flight can tell."""
        self._steps_run += 1
        if self._steps_run % COMMIT_EVERY == 0 and connection.dialect.name == "postgresql":
            dbapi_connection(connection).commit()

    def steps(
        self, heads: tuple[str, ...], context: MigrationContext
    ) -> Iterator[RevisionStep]:
        if heads:
            raise MigrateError(
                f"the {self.database} database db test runs on is already at "
                f"{', '.join(heads)}; it must start empty"
            )
        version_table = context.version_table
        connection = context.connection
        # Alembic read ``heads`` through it: a run without one (offline) fails before this.
        assert connection is not None
        snapshots = Snapshots(connection, {version_table, mark_table_name(version_table)})
        revisions = {name: self.script.get_revision(name) for name in self.order}
        before: dict[str, dict[str, Table]] = {}
        after: dict[str, dict[str, Table]] = {}
        state = snapshots.take()
        for name in self.order:
            before[name] = state
            yield self._step(revisions[name], True, "upgrade")
            self._commit_now_and_then(connection)
            state = after[name] = snapshots.take()
        self.add(UPGRADE, True, _count(len(self.order)))

        self.test = MODELS
        self._models(context)

        self.test = ROUND_TRIPS
        for name in reversed(self.order):
            revision = revisions[name]
            yield self._step(revision, False, "downgrade")
            self._commit_now_and_then(connection)
            said = differences(before[name], snapshots.take())
            if said:
                return self._round_trip_failed("after the downgrade", said)
            yield self._step(revision, True, "upgrade after its downgrade")
            self._commit_now_and_then(connection)
            said = differences(after[name], snapshots.take(), extra="is extra")
            if said:
                return self._round_trip_failed("after the upgrade that followed it", said)
            yield self._step(revision, False, "second downgrade")
            self._commit_now_and_then(connection)
        self.add(ROUND_TRIPS, True, _count(len(self.order)))

        self.test = BASE
        left = sorted(snapshots.take())
        if left:
            self.add(BASE, False, f"left table{'s' if len(left) > 1 else ''} {', '.join(left)}")
        else:
            self.add(BASE, True)

    def _round_trip_failed(self, what: str, said: list[str]) -> None:
        shown = "; ".join(said[:5]) + (f"; and {len(said) - 5} more" if len(said) > 5 else "")
        self.add(f"round trip of {self.revision}", False, f"{what}, {shown}")
        self._not_run(f"not run after the failure of {self.revision}")

    def _models(self, context: MigrationContext) -> None:
        from alembic.autogenerate import compare_metadata

        from .autogenerate import describe_diffs

        metadata = context.opts.get("target_metadata")
        if metadata is None:
            self.add(MODELS, None, "env.py gives Alembic no target_metadata to compare")
            return
        diffs = compare_metadata(context, metadata)
        if diffs:
            self.add(MODELS, False, f"the models have changes no revision covers "
                     f"({describe_diffs(diffs)}); run 'db migrate' to write a revision for them")
        else:
            self.add(MODELS, True)


def run_suite(config: Config) -> TestReport:
    """Run the tests on the databases env.py visits (throwaway ones: see :func:`throwaway`)."""
    script = ScriptDirectory.from_config(config)
    report = TestReport()
    heads = script.get_heads()
    if len(heads) == 1:
        report.append(Outcome(SINGLE_HEAD, True, heads[0]))
    elif not heads:
        report.append(Outcome(SINGLE_HEAD, False, "the folder has no revisions; write one with "
                              "'db migrate'"))
    else:
        report.append(Outcome(SINGLE_HEAD, False, f"{len(heads)} heads ({', '.join(heads)}); "
                              "run 'db merge heads' to join them"))
    # walk_revisions goes from the heads down; reversed, every revision follows its parents.
    order = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    suites: dict[str, _DatabaseSuite] = {}

    def steps(heads: tuple[str, ...], context: MigrationContext) -> Iterator[RevisionStep]:
        database = (config.attributes.get(ATTR_DATABASE) or ("default", "?"))[0]
        if database in suites:  # tested in an earlier run of env.py (see below)
            return iter(())
        suite = suites[database] = _DatabaseSuite(database, script, order, report)
        return suite.steps(heads, context)

    env = folder_of(config).env
    multidb = env is not None and env.multidb
    # Throwaway databases: the runtime's guard does not commit each revision on PostgreSQL
    # (_DatabaseSuite._commit_now_and_then commits in batches instead).  Only for this run: a
    # Config a @migrate.configure hook keeps between commands must not carry it further.
    config.attributes[ATTR_THROWAWAY] = True
    try:
        while True:
            visited = len(suites)
            try:
                with EnvironmentContext(config, script, fn=steps):
                    script.run_env()
                return report
            except _StepFailed as error:
                suites[error.database].failed(error)
                if not multidb:
                    return report
            except Exception:
                if visited == 0 or len(suites) > visited:
                    raise
                # env.py refused to visit again a database that failed (a revision that did not
                # finish on a database that cannot roll DDL back): the others are not tested.
                report.append(Outcome(
                    "the other databases", None,
                    "not run: env.py stopped at the database that failed",
                ))
                return report
            # A revision failed in one database of a multi-database folder; env.py stopped there.
            # Run it again for the databases it had not reached (those tested do nothing).
    finally:
        del config.attributes[ATTR_THROWAWAY]


def _count(revisions: int) -> str:
    return f"{revisions} revision{'' if revisions == 1 else 's'}"
