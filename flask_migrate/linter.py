"""``db lint``: find the revisions whose operations would lock or break a live database.

How a revision is read.  Its ``upgrade()`` (``upgrade_<name>()`` per database in a
multi-database folder) runs, as Alembic would run it, against an offline ``MigrationContext``
of the database's dialect whose DDL implementation is replaced by a recorder: every operation
reaches the recorder as Alembic hands it to the database layer (the ``Column``, ``Index`` and
constraint objects, with their dialect options such as ``postgresql_concurrently``), nothing
is executed and nothing connects.  The line of each operation is that of the innermost frame
of the revision file on the call stack, so a helper function called from the revision is
reported at the call.  Raw SQL given to ``op.execute`` is parsed with ``pglast``, which is
PostgreSQL's own parser; without it (``pip install Flask-Migrate[lint]``) raw SQL gets a note.
MySQL/MariaDB raw SQL gets a note too: the parsers available for it (sqlglot, for one) read
SQL with a grammar of their own rather than MySQL's, and a lint that misreads DDL would give
false assurance.

What is checked.  :data:`RULES` is the one table of rules: each has a stable id, a severity,
and for each kind of database it applies to, why the operation is dangerous and the safe
alternative.  PostgreSQL has every rule; MySQL/MariaDB the ones that apply to it; other
databases (SQLite, ...) the rules about what running code depends on (dropping, renaming,
NOT NULL columns).  Operations on a table created in the same revision are not flagged.  Only
``upgrade`` is checked: a downgrade is an emergency measure, run knowingly.

Accepting a finding.  A comment anywhere in the revision file::

    # flask-migrate: accept drop-column -- the code stopped reading it in release 4.2

accepts that rule (or several, comma-separated) for the whole revision.  A marker without a
reason after ``--``, or naming an unknown rule, is itself an error.

The dialect of each database is that of the application's URL for it (nothing connects), or
the one given with ``--dialect``.  :func:`lint` returns a :class:`LintReport`;
:func:`print_report` is the one place that formats it.
"""
from __future__ import annotations

import contextlib
import inspect
import io
import os
import re
import tokenize
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence, TextIO

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from .errors import MigrateError, UsageError, describe
from .extension import current_record
from .folder import folder_of
from .runtime import binds

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.ddl.impl import DefaultImpl
    from alembic.operations import BatchOperations
    from alembic.operations.batch import BatchOperationsImpl
    from sqlalchemy.engine import Dialect
    from sqlalchemy.sql.base import Executable
    from sqlalchemy.types import TypeEngine

ERROR, WARNING, NOTE = "error", "warning", "note"
#: Keys of :attr:`Rule.texts`: PostgreSQL, MySQL and MariaDB, and every other database.
POSTGRESQL, MYSQL, OTHER = "postgresql", "mysql", "*"

_AUTOCOMMIT = "with op.get_context().autocommit_block():"


@dataclass(frozen=True)
class Rule:
    """One check.

    :param id: the stable identifier, used in accept markers.
    :param severity: ``error`` (``lint`` exits 1), ``warning`` or ``note``.
    :param texts: for each kind of database the rule applies to (:data:`POSTGRESQL`,
        :data:`MYSQL`, :data:`OTHER`), why the operation is dangerous and what to do instead.
    """

    id: str
    severity: str
    texts: Mapping[str, tuple[str, str]]

    def text(self, family: str) -> tuple[str, str] | None:
        """(why, instead) for a kind of database; None when the rule does not apply to it."""
        return self.texts.get(family) or self.texts.get(OTHER)


def _rules(*rules: Rule) -> dict[str, Rule]:
    return {rule.id: rule for rule in rules}


_EXPAND_CONTRACT = (
    "add a new column, write to both from the code, backfill it in batches, move the reads, "
    "then drop the old column in a later release"
)

#: Every rule, by id.  The ids are stable: accept markers and CI configurations name them.
RULES: dict[str, Rule] = _rules(
    Rule("index-not-concurrent", ERROR, {
        POSTGRESQL: (
            "CREATE INDEX blocks every write to the table until the index is built, and "
            "DROP INDEX blocks reads and writes while it waits for running queries",
            "pass postgresql_concurrently=True to op.create_index / op.drop_index (or write "
            f"CONCURRENTLY), inside '{_AUTOCOMMIT}'"),
    }),
    Rule("concurrently-in-transaction", ERROR, {
        POSTGRESQL: (
            "PostgreSQL refuses CREATE/DROP INDEX CONCURRENTLY inside a transaction block, and "
            "each revision runs in one, so the upgrade fails",
            f"run the operation inside '{_AUTOCOMMIT}'"),
    }),
    Rule("constraint-not-valid", ERROR, {
        POSTGRESQL: (
            "adding a foreign key or CHECK constraint reads every row of the table to check it "
            "while holding a lock that blocks writes (a foreign key also locks the table it "
            "references)",
            "add it with postgresql_not_valid=True (NOT VALID), then validate it in a later "
            "revision (or inside an autocommit_block()) with op.execute('ALTER TABLE ... "
            "VALIDATE CONSTRAINT ...'), which does not block writes"),
    }),
    Rule("set-not-null", ERROR, {
        POSTGRESQL: (
            "SET NOT NULL reads the whole table to check for NULLs while holding an ACCESS "
            "EXCLUSIVE lock, which blocks reads and writes",
            "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in a later revision, then "
            "SET NOT NULL (PostgreSQL 12+ trusts the valid constraint and skips the scan) and "
            "drop the CHECK"),
        MYSQL: (
            "making a column NOT NULL rebuilds the table, fails if a row holds NULL, and makes "
            "the inserts of code that leaves the column out fail",
            "first deploy code that always sets the column and backfill the NULLs; then change "
            "it with an online schema change tool (gh-ost, pt-online-schema-change) on a big "
            "table"),
    }),
    Rule("not-null-without-default", ERROR, {
        OTHER: (
            "a NOT NULL column without a server default cannot be added to a table that has "
            "rows (MySQL fills in zeros instead), and the inserts of code still running, which "
            "does not know the column, fail",
            "give it a server_default (a Python-side default= is not one), or add it "
            "nullable, backfill it, and make it NOT NULL in a later revision"),
    }),
    Rule("volatile-default", ERROR, {
        POSTGRESQL: (
            "a volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval(), "
            "...) is computed for every existing row, which rewrites the whole table under an "
            "ACCESS EXCLUSIVE lock; a constant default, or now(), is free since PostgreSQL 11",
            "add the column without that default, then set it with op.alter_column(..., "
            "server_default=...) for new rows and backfill the existing rows in batches"),
        MYSQL: (
            "an expression default such as (UUID()) or (RAND()) cannot be added instantly: "
            "MySQL copies the table, blocking writes",
            "add the column without that default, set it separately for new rows, and "
            "backfill the existing rows in batches"),
    }),
    Rule("type-change", ERROR, {
        POSTGRESQL: (
            "changing a column's type rewrites the table and its indexes under an ACCESS "
            "EXCLUSIVE lock (lengthening a VARCHAR, or VARCHAR to TEXT, are the exceptions)",
            _EXPAND_CONTRACT),
        MYSQL: (
            "changing a column's type copies the table, blocking writes (lengthening a "
            "VARCHAR that keeps the same length prefix is the exception)",
            _EXPAND_CONTRACT + ", or use an online schema change tool"),
    }),
    Rule("rename-column", ERROR, {
        OTHER: (
            "the code deployed now still uses the old name, and fails as soon as the rename "
            "is committed",
            _EXPAND_CONTRACT),
    }),
    Rule("rename-table", ERROR, {
        OTHER: (
            "the code deployed now still uses the old name, and fails as soon as the rename "
            "is committed",
            "create the new table, write to both, backfill, move the reads, then drop the old "
            "one in a later release (or leave a view under the old name meanwhile)"),
    }),
    Rule("drop-column", ERROR, {
        OTHER: (
            "the code deployed now may still use the column (SQLAlchemy selects every mapped "
            "column), and its queries fail as soon as the drop is committed",
            "first release code that no longer uses it (remove it from the model), then drop "
            "it, and accept this finding with the release that stopped using it"),
    }),
    Rule("drop-table", ERROR, {
        OTHER: (
            "the code deployed now may still use the table, and its queries fail as soon as "
            "the drop is committed",
            "first release code that no longer uses it (remove the model), then drop it, and "
            "accept this finding with the release that stopped using it"),
    }),
    Rule("unique-without-index", ERROR, {
        POSTGRESQL: (
            "adding a UNIQUE or PRIMARY KEY constraint builds its index while blocking reads "
            "and writes of the table",
            "build the index first with CREATE UNIQUE INDEX CONCURRENTLY (inside an "
            "autocommit_block()), then add the constraint with op.execute('ALTER TABLE ... ADD "
            "CONSTRAINT name UNIQUE USING INDEX index_name') (or PRIMARY KEY USING INDEX)"),
    }),
    Rule("sql-not-checked", NOTE, {
        OTHER: (
            "raw SQL is only checked on PostgreSQL, with pglast (PostgreSQL's own parser)",
            "review it by hand; on PostgreSQL, pip install Flask-Migrate[lint]"),
    }),
    Rule("not-checked", WARNING, {
        OTHER: (
            "the operations after this point were not seen, because the function raised when "
            "run without a database (e.g. it reads data through op.get_bind())",
            "review the rest by hand, or move the data migration into a revision of its own"),
    }),
    Rule("accept-marker", ERROR, {
        OTHER: (
            "an accept marker must name known rules and say why the finding is safe here",
            "write '# flask-migrate: accept RULE-ID -- the reason'"),
    }),
    Rule("accept-unused", NOTE, {
        OTHER: (
            "the marker accepts a rule this revision does not break",
            "remove the marker"),
    }),
)

#: What a marker may not accept: the rule about markers.
_NOT_ACCEPTABLE = frozenset({"accept-marker", "accept-unused"})


@dataclass(frozen=True)
class Finding:
    """One thing a revision does that a rule flags.

    :param rule: the rule id (a key of :data:`RULES`).
    :param severity: the rule's severity.
    :param revision: the revision id.
    :param path: the revision file.
    :param line: the line of the operation in that file, when known.
    :param message: what the revision does, e.g. ``drops column user.email``.
    :param why: why that is dangerous on this kind of database.
    :param instead: the safe alternative.
    :param database: the database's name in a multi-database folder ("" for the default
        one); None in a single-database folder.
    :param accepted: the reason given by the revision's accept marker, if it has one.
    """

    rule: str
    severity: str
    revision: str
    path: str
    line: int | None
    message: str
    why: str
    instead: str
    database: str | None = None
    accepted: str | None = None


class LintReport(list[Finding]):
    """The findings of every revision checked, accepted ones included, in apply order.

    ``exit_code`` is 1 when a finding that is not accepted is an error, else 0.
    """

    def __init__(self, findings: Iterable[Finding] = (), revisions: int = 0,
                 dialects: Sequence[str] = ()) -> None:
        super().__init__(findings)
        #: How many revisions were checked.
        self.revisions = revisions
        #: The dialect of each database checked (in a multi-database folder, ``name:dialect``).
        self.dialects = tuple(dialects)

    @property
    def open(self) -> list[Finding]:
        """The findings no marker accepts."""
        return [finding for finding in self if finding.accepted is None]

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.open if finding.severity == ERROR]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors else 0

    @property
    def error(self) -> None:
        return None

    def render(self, out: TextIO) -> None:
        """The command line's report: :func:`print_report` with its summary line."""
        print_report(self, out)


# -- the checks ----------------------------------------------------------------------------------


def _family(dialect: str) -> str:
    if dialect == POSTGRESQL:
        return POSTGRESQL
    if dialect in (MYSQL, "mariadb"):
        return MYSQL
    return dialect


#: Functions whose value changes per row: as a column's default, PostgreSQL computes them for
#: each existing row.  (User-defined functions are volatile unless declared otherwise; only
#: these well-known ones are recognised.)
_VOLATILE = {
    POSTGRESQL: frozenset({
        "random", "clock_timestamp", "timeofday", "gen_random_uuid", "uuid_generate_v1",
        "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4", "uuidv7", "nextval", "txid_current",
    }),
    MYSQL: frozenset({"uuid", "uuid_short", "rand", "sysdate", "uuid_to_bin"}),
}


class RevisionCheck:
    """Applies the rules to what one revision does to one database, in order.

    The recorder of Alembic operations and the reader of raw SQL call its methods; each says
    what the revision does, where (``line``), and the check flags what is dangerous.
    """

    def __init__(self, script: Script, database: str | None, dialect: str) -> None:
        self.script = script
        self.path = os.path.abspath(script.path)
        self.database = database
        self.dialect = dialect
        self.family = _family(dialect)
        self.findings: list[Finding] = []
        self._created_tables: set[str] = set()
        self._created_indexes: set[str] = set()
        self._not_valid: set[str] = set()
        self._autocommit = 0

    # Where and in which state.

    def line(self) -> int | None:
        """The line of the revision file that is running now (innermost frame of the file)."""
        frame = inspect.currentframe()
        while frame is not None:
            if os.path.abspath(frame.f_code.co_filename) == self.path:
                return frame.f_lineno
            frame = frame.f_back
        return None

    @contextlib.contextmanager
    def autocommit_block(self) -> Iterator[None]:
        """Stands in for ``MigrationContext.autocommit_block()``: what runs in it is outside
        the revision's transaction."""
        self._autocommit += 1
        try:
            yield
        finally:
            self._autocommit -= 1

    @property
    def in_transaction(self) -> bool:
        return not self._autocommit

    def new_table(self, table: str | None) -> bool:
        """Whether ``table`` was created by this revision (so nobody uses it yet)."""
        return table is not None and table.lower() in self._created_tables

    def flag(self, rule_id: str, message: str, line: int | None = None) -> None:
        rule = RULES[rule_id]
        text = rule.text(self.family)
        if text is None:
            return
        self.findings.append(Finding(
            rule.id, rule.severity, self.script.revision, self.script.path,
            self.line() if line is None else line, message, text[0], text[1], self.database,
        ))

    # What the revision does.

    def created_table(self, table: str) -> None:
        self._created_tables.add(table.lower())

    def dropped_table(self, table: str) -> None:
        if not self.new_table(table):
            self.flag("drop-table", f"drops table {table}")

    def renamed_table(self, old: str, new: str) -> None:
        if self.new_table(old):
            self._created_tables.add(new.lower())
        else:
            self.flag("rename-table", f"renames table {old} to {new}")

    def added_column(
        self, table: str, column: str, *, nullable: bool, default: str | None,
        volatile: bool | None = None,
    ) -> None:
        """``default`` is the server default's SQL; ``volatile`` whether it is volatile, when
        the caller already knows (None: judged here from ``default``)."""
        if self.new_table(table):
            return
        if not nullable and default is None:
            self.flag("not-null-without-default",
                      f"adds NOT NULL column {table}.{column} without a server default")
        if default is not None:
            if volatile is None:
                volatile = _is_volatile(default, self.family)
            if volatile:
                self.flag("volatile-default",
                          f"adds column {table}.{column} with the volatile default {default}")

    def dropped_column(self, table: str, column: str) -> None:
        if not self.new_table(table):
            self.flag("drop-column", f"drops column {table}.{column}")

    def renamed_column(self, table: str, old: str, new: str) -> None:
        if not self.new_table(table):
            self.flag("rename-column", f"renames column {table}.{old} to {new}")

    def set_not_null(self, table: str, column: str) -> None:
        if not self.new_table(table):
            self.flag("set-not-null", f"makes column {table}.{column} NOT NULL")

    def changed_type(self, table: str, column: str, change: str) -> None:
        if not self.new_table(table):
            self.flag("type-change", f"changes the type of {table}.{column} {change}")

    def created_index(self, table: str | None, name: str | None, concurrently: bool) -> None:
        label = name or "(unnamed)"
        if name:
            self._created_indexes.add(name.lower())
        self._index_operation("creates", table, label, concurrently, new=self.new_table(table))

    def dropped_index(self, table: str | None, name: str | None, concurrently: bool) -> None:
        new = self.new_table(table) or bool(name and name.lower() in self._created_indexes)
        self._index_operation("drops", table, name or "(unnamed)", concurrently, new=new)

    def _index_operation(
        self, verb: str, table: str | None, name: str, concurrently: bool, new: bool
    ) -> None:
        on = f" on table {table}" if table else ""
        if concurrently and self.in_transaction:
            self.flag("concurrently-in-transaction",
                      f"{verb} index {name}{on} CONCURRENTLY inside the revision's transaction")
        elif not concurrently and not new:
            self.flag("index-not-concurrent", f"{verb} index {name}{on} without CONCURRENTLY")

    def added_constraint(
        self, table: str, name: str | None, kind: str, *, not_valid: bool = False,
        using_index: bool = False,
    ) -> None:
        """``kind``: ``foreign key``, ``check``, ``unique`` or ``primary key``."""
        label = f"{kind} constraint {name}" if name else f"a {kind} constraint"
        if self.new_table(table):
            return
        if kind in ("foreign key", "check"):
            if not not_valid:
                self.flag("constraint-not-valid", f"adds {label} to table {table} without "
                          "NOT VALID")
            elif name and self.in_transaction:
                self._not_valid.add(name.lower())
        elif kind in ("unique", "primary key") and not using_index:
            self.flag("unique-without-index",
                      f"adds {label} to table {table} without a prebuilt index")

    def validated_constraint(self, table: str, name: str) -> None:
        if name.lower() in self._not_valid and self.in_transaction:
            self.flag("constraint-not-valid",
                      f"validates constraint {name} of table {table} in the transaction that "
                      "added it, so the lock taken to add it is held during the check")

    def unchecked_sql(self, why: str) -> None:
        self.flag("sql-not-checked", f"runs raw SQL that is not checked: {why}")


def _is_volatile(default: str, family: str) -> bool:
    """Whether the SQL expression ``default`` calls a well-known volatile function."""
    volatile = _VOLATILE.get(family)
    if not volatile:
        return False
    return bool(_function_names(default, family) & volatile)


_CALL = re.compile(r"([A-Za-z_][\w$]*)\s*\(")


def _function_names(expression: str, family: str) -> set[str]:
    """The (lower-case, unqualified) names of the functions ``expression`` calls."""
    if family == POSTGRESQL:
        found = _pg_function_names(expression)
        if found is not None:
            return found
    # One expression, not a statement: the names before "(" are the calls.
    return {name.lower() for name in _CALL.findall(expression)}


# -- recording what Alembic runs -----------------------------------------------------------------


def _name(thing: object) -> str | None:
    name = getattr(thing, "name", None)
    return None if name is None else str(name)


def _table_of(thing: object) -> str | None:
    table = getattr(thing, "table", None)
    name = _name(table) if table is not None else None
    # Alembic's stand-in table when op.drop_index() is given no table_name.
    return None if name == "no_table" else name


def _type_instance(type_: TypeEngine[Any] | type[TypeEngine[Any]]) -> TypeEngine[Any]:
    return type_() if isinstance(type_, type) else type_


def _sql_of(element: Any, dialect: Dialect) -> str | None:
    """The SQL text of a default or a statement: a string, ``text()``, or a construct."""
    if element is None:
        return None
    if isinstance(element, str):
        return element
    text = getattr(element, "text", None)
    if isinstance(text, str):  # sa.text(...)
        return text
    try:
        return str(element.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except Exception:  # a construct this dialect cannot render offline
        return None


def _server_default(column: sa.Column[Any], dialect: Dialect) -> str | None:
    default = getattr(column, "server_default", None)
    if default is None:
        return None
    return _sql_of(getattr(default, "arg", default), dialect) or "(an expression)"


def _widens(old: TypeEngine[Any], new: TypeEngine[Any], family: str) -> bool:
    """Whether changing ``old`` to ``new`` keeps the table as it is (only lengthens text)."""
    if not isinstance(old, sa.String) or not isinstance(new, sa.String):
        return False
    if isinstance(old, sa.Enum) or isinstance(new, sa.Enum):
        return False
    if family == POSTGRESQL:
        # VARCHAR(n) -> VARCHAR(m >= n), VARCHAR -> TEXT: no rewrite since PostgreSQL 9.2.
        return new.length is None or (old.length is not None and new.length >= old.length)
    if family == MYSQL:
        # In place only while the length prefix stays 1 byte (<= 255 bytes; utf8mb4 assumed)
        # or stays 2 bytes.
        if old.length is None or new.length is None or new.length < old.length:
            return False
        return (old.length * 4 <= 255) == (new.length * 4 <= 255)
    return False


def _describe_type(type_: TypeEngine[Any], dialect: Dialect) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:
        return repr(type_)


class _Recorder:
    """Stands in for Alembic's DDL implementation (a ``MigrationContext.impl``, or the
    collector of a ``batch_alter_table()`` block) and tells a :class:`RevisionCheck` what each
    operation does, without executing it.  Whatever it does not check goes on to ``target``,
    which (offline) only writes SQL to a buffer nobody reads.
    """

    def __init__(
        self, target: DefaultImpl | BatchOperationsImpl, check: RevisionCheck, dialect: Dialect
    ) -> None:
        self._target = target
        self._check = check
        self._dialect = dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def create_table(self, table: sa.Table, **kw: Any) -> None:
        self._check.created_table(table.name)

    def drop_table(self, table: sa.Table, **kw: Any) -> None:
        self._check.dropped_table(table.name)

    def rename_table(self, old_table_name: str, new_table_name: str, *args: Any,
                     **kw: Any) -> None:
        self._check.renamed_table(old_table_name, new_table_name)

    def add_column(self, table_name: str, column: sa.Column[Any], *args: Any,
                   **kw: Any) -> None:
        self._check.added_column(
            table_name, column.name, nullable=column.nullable is not False,
            default=_server_default(column, self._dialect),
        )

    def drop_column(self, table_name: str, column: sa.Column[Any], *args: Any,
                    **kw: Any) -> None:
        self._check.dropped_column(table_name, _name(column) or str(column))

    def alter_column(self, table_name: str, column_name: str, *args: Any, **kw: Any) -> None:
        check = self._check
        if kw.get("nullable") is False and kw.get("existing_nullable") is not False:
            check.set_not_null(table_name, column_name)
        type_ = kw.get("type_")
        if type_ is not None:
            new = _type_instance(type_)
            old = kw.get("existing_type")
            old = _type_instance(old) if old is not None else None
            if old is None:
                check.changed_type(table_name, column_name, (
                    f"to {_describe_type(new, self._dialect)} (the old type is not given: "
                    "pass existing_type= so that a change that only lengthens it is known)"
                ))
            elif not _widens(old, new, check.family):
                check.changed_type(table_name, column_name, (
                    f"from {_describe_type(old, self._dialect)} to "
                    f"{_describe_type(new, self._dialect)}"
                ))
        if kw.get("name") and kw["name"] != column_name:
            check.renamed_column(table_name, column_name, kw["name"])

    def create_index(self, index: sa.Index, **kw: Any) -> None:
        self._check.created_index(_table_of(index), _name(index), _concurrently(index))

    def drop_index(self, index: sa.Index, **kw: Any) -> None:
        self._check.dropped_index(_table_of(index), _name(index), _concurrently(index))

    def add_constraint(self, const: sa.Constraint) -> None:
        if isinstance(const, sa.ForeignKeyConstraint):
            kind = "foreign key"
        elif isinstance(const, sa.CheckConstraint):
            kind = "check"
        elif isinstance(const, sa.PrimaryKeyConstraint):
            kind = "primary key"
        elif isinstance(const, sa.UniqueConstraint):
            kind = "unique"
        else:
            return
        not_valid = bool(const.dialect_kwargs.get("postgresql_not_valid"))
        self._check.added_constraint(_table_of(const) or "?", _name(const), kind,
                                     not_valid=not_valid)

    def drop_constraint(self, const: sa.Constraint) -> None:
        pass

    def execute(self, sql: str | Executable, *args: Any, **kw: Any) -> None:
        if isinstance(sql, sa.sql.expression.UpdateBase) or isinstance(sql, sa.sql.Select):
            return  # data, not schema: no rule is about it
        text = _sql_of(sql, self._dialect)
        check = self._check
        if text is None:
            check.unchecked_sql("a construct that cannot be rendered without a database")
        elif check.family != POSTGRESQL:
            check.unchecked_sql(f"raw SQL is not parsed on {check.dialect}")
        else:
            check_postgresql(text, check)


def _concurrently(index: sa.Index) -> bool:
    return bool(index.dialect_kwargs.get("postgresql_concurrently"))


def _run_offline(function: Callable[[], object], check: RevisionCheck) -> None:
    """Run a revision's upgrade function against the recorder, on an offline context."""
    context = MigrationContext.configure(
        dialect_name=check.dialect, opts={"as_sql": True, "output_buffer": io.StringIO()},
    )
    dialect = context.dialect
    # MigrationContext.impl is what Operations (and op.execute) hand every operation to.
    context.impl = _Recorder(context.impl, check, dialect)  # type: ignore[assignment]
    # Revisions reach it as op.get_context().autocommit_block().
    context.autocommit_block = check.autocommit_block  # type: ignore[method-assign]
    with Operations.context(context) as operations:
        original = operations.batch_alter_table

        @contextlib.contextmanager
        def batch_alter_table(*args: Any, **kwargs: Any) -> Iterator[BatchOperations]:
            with original(*args, **kwargs) as batch:
                # The recorder keeps every operation, so the block has nothing to rebuild
                # (which offline would need the live table).
                batch.impl.recreate = "never"
                batch.impl = _Recorder(batch.impl, check, dialect)  # type: ignore[assignment]
                yield batch

        # The op module calls the methods of this instance, so this one is what runs.
        operations.batch_alter_table = batch_alter_table  # type: ignore[method-assign]
        try:
            function()
        except Exception as error:
            line = _failed_line(error, check.path)
            check.flag("not-checked", f"{function.__name__}() raised "
                       f"{type(error).__name__}: {describe(error)}", line=line)


def _failed_line(error: BaseException, path: str) -> int | None:
    found = None
    traceback = error.__traceback__
    while traceback is not None:
        if os.path.abspath(traceback.tb_frame.f_code.co_filename) == path:
            found = traceback.tb_lineno
        traceback = traceback.tb_next
    return found


# -- raw SQL (PostgreSQL) ------------------------------------------------------------------------


def _pglast() -> Any:
    try:
        import pglast
    except ImportError:
        return None
    return pglast


def _pg_function_names(expression: str) -> set[str] | None:
    pglast = _pglast()
    if pglast is None:
        return None
    try:
        tree = pglast.parse_sql(f"SELECT {expression}")
    except pglast.parser.ParseError:
        return None
    return _pg_calls(tree)


def check_postgresql(sql: str, check: RevisionCheck) -> None:
    """Tell ``check`` what the statements of ``sql`` do, read with PostgreSQL's parser."""
    pglast = _pglast()
    if pglast is None:
        check.unchecked_sql("pglast is not installed (pip install Flask-Migrate[lint])")
        return
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as error:
        check.unchecked_sql(f"PostgreSQL cannot parse it ({error})")
        return
    for raw in statements:
        _pg_statement(raw.stmt, check)


def _relname(relation: Any) -> str:
    return str(relation.relname) if relation is not None else "?"


def _pg_statement(statement: Any, check: RevisionCheck) -> None:
    from pglast import ast, enums

    if isinstance(statement, ast.CreateStmt):
        check.created_table(_relname(statement.relation))
    elif isinstance(statement, ast.CreateTableAsStmt) and statement.into is not None:
        check.created_table(_relname(statement.into.rel))
    elif isinstance(statement, ast.IndexStmt):
        check.created_index(_relname(statement.relation), statement.idxname,
                            bool(statement.concurrent))
    elif isinstance(statement, ast.DropStmt):
        for name in statement.objects or ():
            parts = name if isinstance(name, tuple) else (name,)
            object_name = ".".join(str(part.sval) for part in parts if hasattr(part, "sval"))
            if statement.removeType == enums.ObjectType.OBJECT_INDEX:
                check.dropped_index(None, object_name, bool(statement.concurrent))
            elif statement.removeType == enums.ObjectType.OBJECT_TABLE:
                check.dropped_table(object_name)
    elif isinstance(statement, ast.RenameStmt):
        table = _relname(statement.relation)
        if statement.renameType == enums.ObjectType.OBJECT_TABLE:
            check.renamed_table(table, str(statement.newname))
        elif statement.renameType == enums.ObjectType.OBJECT_COLUMN:
            check.renamed_column(table, str(statement.subname), str(statement.newname))
    elif isinstance(statement, ast.AlterTableStmt):
        if statement.objtype == enums.ObjectType.OBJECT_TABLE:
            table = _relname(statement.relation)
            for command in statement.cmds or ():
                _pg_alter(table, command, check)


def _pg_alter(table: str, command: Any, check: RevisionCheck) -> None:
    from pglast import ast, enums
    from pglast.stream import RawStream

    kind = enums.AlterTableType
    subtype = command.subtype
    if subtype == kind.AT_AddColumn and isinstance(command.def_, ast.ColumnDef):
        column = command.def_
        nullable, default, volatile = True, None, None
        for constraint in column.constraints or ():
            if constraint.contype == enums.ConstrType.CONSTR_NOTNULL:
                nullable = False
            elif constraint.contype == enums.ConstrType.CONSTR_DEFAULT:
                default = RawStream()(constraint.raw_expr)
                volatile = bool(_pg_calls(constraint.raw_expr) & _VOLATILE[POSTGRESQL])
            elif constraint.contype in (enums.ConstrType.CONSTR_UNIQUE,
                                        enums.ConstrType.CONSTR_PRIMARY):
                kind_name = ("unique" if constraint.contype == enums.ConstrType.CONSTR_UNIQUE
                             else "primary key")
                check.added_constraint(table, constraint.conname, kind_name)
        check.added_column(table, str(column.colname), nullable=nullable, default=default,
                           volatile=volatile)
    elif subtype == kind.AT_DropColumn:
        check.dropped_column(table, str(command.name))
    elif subtype == kind.AT_SetNotNull:
        check.set_not_null(table, str(command.name))
    elif subtype == kind.AT_AlterColumnType:
        new = RawStream()(command.def_.typeName) if command.def_ is not None else "?"
        check.changed_type(table, str(command.name), f"to {new}")
    elif subtype == kind.AT_AddConstraint and isinstance(command.def_, ast.Constraint):
        constraint = command.def_
        names = {
            enums.ConstrType.CONSTR_FOREIGN: "foreign key",
            enums.ConstrType.CONSTR_CHECK: "check",
            enums.ConstrType.CONSTR_UNIQUE: "unique",
            enums.ConstrType.CONSTR_PRIMARY: "primary key",
        }
        if constraint.contype in names:
            check.added_constraint(
                table, constraint.conname, names[constraint.contype],
                not_valid=bool(constraint.skip_validation),
                using_index=bool(constraint.indexname),
            )
    elif subtype == kind.AT_ValidateConstraint:
        check.validated_constraint(table, str(command.name))


def _pg_calls(node: Any) -> set[str]:
    from pglast import visitors

    names: set[str] = set()

    class Calls(visitors.Visitor):
        def visit_FuncCall(self, ancestors: Any, call: Any) -> None:
            names.add(call.funcname[-1].sval.lower())

    Calls()(node)
    return names


# -- accept markers ------------------------------------------------------------------------------

_MARKER = re.compile(r"#\s*flask-migrate\s*:\s*accept\b(?P<body>.*)$", re.IGNORECASE)


@dataclass
class _Markers:
    """The accept markers of one revision file: rule id -> (reason, line)."""

    accepted: dict[str, tuple[str, int]] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)


def read_markers(path: str) -> _Markers:
    """The accept markers in the comments of the revision file at ``path``."""
    markers = _Markers()
    try:
        with open(path, "rb") as file:
            tokens = list(tokenize.tokenize(file.readline))
    except (OSError, SyntaxError, tokenize.TokenError):
        return markers  # Alembic has loaded the file, so this does not happen in practice
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = _MARKER.match(token.string)
        if match is None:
            continue
        line = token.start[0]
        rules, dashes, reason = match.group("body").partition("--")
        ids = [rule for rule in re.split(r"[\s,]+", rules.strip()) if rule]
        if not ids:
            markers.problems.append((line, "has an accept marker that names no rule"))
            continue
        unknown = [rule for rule in ids if rule not in RULES or rule in _NOT_ACCEPTABLE]
        if unknown:
            markers.problems.append((line, f"has an accept marker for the unknown rule "
                                     f"{', '.join(unknown)}"))
            continue
        if not dashes or not reason.strip():
            markers.problems.append((line, f"has an accept marker for {', '.join(ids)} with no "
                                     "reason after '--'"))
            continue
        for rule in ids:
            markers.accepted[rule] = (reason.strip(), line)
    return markers


# -- the command --------------------------------------------------------------------------------

#: The database kinds ``--dialect`` accepts without asking SQLAlchemy.
_KNOWN_DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite", "mssql", "oracle")


def _require_dialect(name: str) -> str:
    name = name.strip().lower()
    if name in ("postgres", "pg"):
        name = POSTGRESQL
    if name not in _KNOWN_DIALECTS:
        try:
            sa.engine.make_url(f"{name}://").get_dialect()
        except Exception:
            raise UsageError(
                f"unknown database kind '{name}' for --dialect; use postgresql, mysql, "
                "mariadb or sqlite"
            ) from None
    return name


def databases(config: Config, dialect: str | None) -> list[tuple[str | None, str]]:
    """(name, dialect) of every database the folder migrates; the name is None in a
    single-database folder.  Nothing connects: the dialect is read from each URL."""
    env = folder_of(config).env
    multidb = env is not None and env.multidb
    record = current_record()
    if record is None:
        if dialect is None or multidb:
            raise MigrateError(
                "lint needs the application, to read the kind of each database from its URL; "
                "run it where 'flask db' finds the app, or pass --dialect"
            )
        return [(None, dialect)]
    found: list[tuple[str | None, str]] = []
    for name in binds.database_names(record, multidb):
        kind = dialect or binds.engine(record, name).dialect.name
        found.append((name if multidb else None, kind))
    return found


def _revisions(script: ScriptDirectory, rev_range: str | None) -> list[Script]:
    """The revisions of ``rev_range`` (``[start]:[end]``, default all), oldest first.

    Both ends are included, as in ``history``; ``X~N`` is the revision N steps before ``X``
    (a revision id, ``head`` or ``heads``), so ``heads~2:`` is the last three revisions.
    """
    if rev_range is None:
        base, head = "base", "heads"
    else:
        if ":" not in rev_range:
            raise UsageError(
                f"the lint range '{rev_range}' has no ':'; write it as [start]:[end], e.g. "
                "-r heads~2: or -r base:head"
            )
        base, _, head = (_steps_back(script, end) for end in rev_range.partition(":"))
    return list(reversed(list(script.walk_revisions(base or "base", head or "heads"))))


_STEPS_BACK = re.compile(r"^(?P<start>[^~]+)~(?P<steps>\d+)$")


def _steps_back(script: ScriptDirectory, end: str) -> str:
    """``X~N`` as the id of the revision N steps before X; any other text as it is."""
    match = _STEPS_BACK.match(end.strip())
    if match is None:
        return end
    start, steps = match.group("start"), int(match.group("steps"))
    if start in ("head", "heads"):
        heads = script.get_heads()
        if len(heads) != 1:
            raise UsageError(
                f"'{end}' needs a single head, and there are {len(heads)}; name the revision "
                "to count back from (see 'db heads')"
            )
        start = heads[0]
    revision = script.get_revision(start)
    for _ in range(steps):
        down = revision.down_revision if revision is not None else None
        if isinstance(down, (tuple, list)):
            raise UsageError(
                f"'{end}' goes back through the merge revision {revision.revision}; name the "
                "first revision of the range instead (see 'db history')"
            )
        if down is None:
            return "base"  # past the first revision: the whole history
        revision = script.get_revision(down)
    return revision.revision if revision is not None else end


def _upgrade_function(module: ModuleType, database: str | None) -> Callable[[], object] | None:
    """The function that upgrades ``database`` in a revision module, or None."""
    function: object = getattr(module, "upgrade" if database is None else f"upgrade_{database}",
                               None)
    if callable(function):
        return function
    if database is None:
        return None
    plain: object = getattr(module, "upgrade", None)
    # Written before the folder became multi-database: the default database's.
    if database == binds.DEFAULT and callable(plain) and not inspect.signature(plain).parameters:
        return plain
    return None


def check_revision(script: Script, targets: Sequence[tuple[str | None, str]]) -> list[Finding]:
    """The findings of one revision for each (database, dialect) of ``targets``, with its
    accept markers applied."""
    findings: list[Finding] = []
    for database, dialect in targets:
        function = _upgrade_function(script.module, database)
        if not callable(function):
            continue
        check = RevisionCheck(script, database, dialect)
        _run_offline(function, check)
        findings += check.findings
    markers = read_markers(script.path)
    used: set[str] = set()
    for index, finding in enumerate(findings):
        accepted = markers.accepted.get(finding.rule)
        if accepted is not None:
            findings[index] = replace(finding, accepted=accepted[0])
            used.add(finding.rule)
    for rule_id, (reason, line) in markers.accepted.items():
        if rule_id not in used:
            findings.append(_file_finding("accept-unused", script, line,
                                          f"accepts {rule_id}, which it does not break"))
    for line, problem in markers.problems:
        findings.append(_file_finding("accept-marker", script, line, problem))
    findings.sort(key=lambda finding: finding.line or 0)
    return findings


def _file_finding(rule_id: str, script: Script, line: int, message: str) -> Finding:
    rule = RULES[rule_id]
    why, instead = rule.texts[OTHER]
    return Finding(rule.id, rule.severity, script.revision, script.path, line, message, why,
                   instead)


def lint(
    config: Config,
    rev_range: str | None = None,
    dialect: str | None = None,
    revisions: Sequence[str] | None = None,
) -> LintReport:
    """Check the revisions of ``rev_range`` (or the ids ``revisions``) of the folder.

    :param dialect: check for this kind of database instead of that of each URL.
    """
    if dialect is not None:
        dialect = _require_dialect(dialect)
    targets = databases(config, dialect)
    script = ScriptDirectory.from_config(config)
    if revisions is not None:
        scripts = [script.get_revision(revision) for revision in revisions]
    else:
        scripts = _revisions(script, rev_range)
    findings: list[Finding] = []
    for revision in scripts:
        findings += check_revision(revision, targets)
    shown = [kind if name is None else f"{name or 'default'}:{kind}" for name, kind in targets]
    return LintReport(findings, len(scripts), shown)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def print_report(report: LintReport, out: TextIO, summary: bool = True) -> None:
    """Each finding no marker accepts, then (with ``summary``) one line of totals.

    A finding is ``FILE:LINE: SEVERITY RULE-ID: revision REV [database NAME] does ...``,
    followed by why it is dangerous and what to do instead, indented.
    """
    for finding in report.open:
        where = os.path.relpath(finding.path)
        if finding.line is not None:
            where += f":{finding.line}"
        database = ""
        if finding.database is not None:
            database = f" (database {finding.database or 'default'})"
        print(f"{where}: {finding.severity} {finding.rule}: revision {finding.revision}"
              f"{database} {finding.message}", file=out)
        print(f"    why: {finding.why}", file=out)
        print(f"    instead: {finding.instead}", file=out)
    if not summary:
        return
    counts = []
    for severity in (ERROR, WARNING, NOTE):
        number = sum(1 for finding in report.open if finding.severity == severity)
        if number:
            counts.append(_plural(number, severity))
    counts = counts or ["no findings"]
    accepted = len(report) - len(report.open)
    if accepted:
        counts.append(f"{accepted} accepted")
    checked = f"Checked {_plural(report.revisions, 'revision')} for {', '.join(report.dialects)}"
    print(f"{checked}: {', '.join(counts)}.", file=out)
