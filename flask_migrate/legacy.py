"""Migrations folders written for Flask-Migrate 2.x-4.x, on the installed stack.

This module owns three things:

- recognising what a folder's ``env.py`` and ``script.py.mako`` are: one of our thin templates,
  or a full env.py of an older Flask-Migrate, and which of the old constructs it uses
  (:func:`read_env`, :func:`read_script_template`);
- what keeps an old env.py working on Flask-SQLAlchemy 3 and SQLAlchemy 2: a view of the
  Flask-SQLAlchemy object that still takes 2.x's ``get_engine(app, bind)``
  (:func:`old_env_support`), and the real URL behind a ``str(engine.url)`` whose password
  SQLAlchemy 2 masks (:func:`real_url`);
- the guard that keeps autogenerate from writing a revision that drops every table of a
  database because env.py handed Alembic the wrong models: a static check of env.py before
  the run (:func:`refuse_unsafe_env`), and a check of what the run proposes
  (:func:`autogenerate_guard`, :func:`refuse_wiping_diffs`), which also catches an env.py
  this module does not know.

It imports Alembic, SQLAlchemy, Flask and :mod:`flask_migrate.runtime.binds`, never the
command-line modules.
"""
from __future__ import annotations

import ast
import contextlib
import os
import re
from dataclasses import dataclass
from typing import Any, Iterator

import sqlalchemy as sa
from flask import current_app, has_app_context

from .errors import MigrateError
from .runtime import binds

#: What SQLAlchemy 2 puts in place of a password when a URL is turned into text.
_PASSWORD_MASK = "***"

#: Constructs of env.py files written for Flask-Migrate 2.x-4.x, by name.
CONSTRUCTS: dict[str, re.Pattern[str]] = {
    # logging.config.fileConfig(config.config_file_name): needs [loggers] etc. in alembic.ini.
    "file_config": re.compile(r"\bfileConfig\s*\("),
    # Each bind's tables picked from db.metadata by the marker Flask-SQLAlchemy 2 set.
    "bind_key_filter": re.compile(r"""\binfo\s*(?:\.\s*get\s*\(\s*|\[\s*)['"]bind_key['"]"""),
    # Flask-SQLAlchemy 3's per-bind metadata: an env.py that reads it knows both versions.
    "metadatas": re.compile(r"\.metadatas\b"),
    # Flask-SQLAlchemy 2's get_engine(app, bind), which 3.x no longer accepts.
    "get_engine_app": re.compile(r"\.get_engine\s*\(\s*(?:current_app|app)\b"),
    # str(...url): SQLAlchemy 2 masks the password in it.
    "str_url": re.compile(r"\bstr\s*\([^()]*(?:\([^()]*\))?[^()]*\.url\s*\)"),
    # The empty-revision check of the old templates.
    "cmd_opts_autogenerate": re.compile(r"\bcmd_opts\b[^\n]*\bautogenerate\b"),
    # One run per database, with upgrade_<name>() functions in the revisions.
    "engine_name": re.compile(r"\brun_migrations\s*\(\s*engine_name\b|\bupgrade_token\b"),
    # An asyncio env.py (Flask-Migrate 4's aioflask templates).
    "asyncio": re.compile(r"\basync_engine_from_config\b|\brun_sync\s*\(|\basyncio\.run\s*\("),
}

#: Top-level functions and ``context.configure()`` arguments the old stock env.py files had;
#: anything else is the user's own code, which a rewrite must not drop silently.
_STOCK_FUNCTIONS = frozenset({
    "get_engine", "get_engine_url", "get_metadata", "run_migrations_offline",
    "run_migrations_online", "do_run_migrations", "run_async_migrations",
    "process_revision_directives",
})
_STOCK_CONFIGURE_ARGS = frozenset({
    "url", "connection", "target_metadata", "literal_binds", "output_buffer",
    "process_revision_directives", "upgrade_token", "downgrade_token", "dialect_opts",
})


@dataclass(frozen=True)
class EnvPy:
    """What a migrations folder's env.py is.

    :param path: its path.
    :param text: its content.
    :param thin: it calls :func:`flask_migrate.runtime.run_migrations` (one of our templates).
    :param multidb: it migrates every database, with ``upgrade_<name>()`` in revisions.
    :param asynchronous: it runs on an asyncio connection.
    :param constructs: the names (keys of :data:`CONSTRUCTS`) of the old constructs it uses.
    :param own_code: things in it that no stock env.py had (functions, configure arguments).
    :param syntax_error: why it cannot be parsed, if it cannot.
    """

    path: str
    text: str
    thin: bool
    multidb: bool
    asynchronous: bool
    constructs: frozenset[str]
    own_code: tuple[str, ...] = ()
    syntax_error: str | None = None

    @property
    def template(self) -> str:
        """The stock template of the same kind."""
        name = "flask-multidb" if self.multidb else "flask"
        return "aio" + name if self.asynchronous else name

    @property
    def kind(self) -> str:
        """How reports name it, e.g. 'full env.py of Flask-Migrate 2.x-4.x, multi-database'."""
        what = "thin env.py (flask_migrate.runtime)" if self.thin else (
            "full env.py of Flask-Migrate 2.x-4.x" if "context.run_migrations" in self.text
            else "custom env.py"
        )
        shape = "multi-database" if self.multidb else "single database"
        return f"{what}, {shape}" + (", asyncio" if self.asynchronous else "")


def read_env(folder: str) -> EnvPy | None:
    """Analyse ``folder/env.py``; None when there is none."""
    path = os.path.join(folder, "env.py")
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:  # missing, or unreadable: the command itself will say so
        return None
    return analyse_env(text, path)


def analyse_env(text: str, path: str = "env.py") -> EnvPy:
    """Analyse the text of an env.py."""
    code = _without_comments(text)
    constructs = frozenset(name for name, pattern in CONSTRUCTS.items() if pattern.search(code))
    own_code: list[str] = []
    syntax_error = None
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        syntax_error = f"line {error.lineno}: {error.msg}"
        tree = None
    call = _runtime_call(tree) if tree is not None else None
    # The import must be real code, not a comment: the AST has no comments.
    thin = call is not None and "flask_migrate.runtime" in code
    if thin:
        keywords = {
            keyword.arg: keyword.value.value
            for keyword in call.keywords
            if keyword.arg and isinstance(keyword.value, ast.Constant)
        }
        multidb = keywords.get("multidb") is True
        asynchronous = keywords.get("asynchronous") is True
    else:
        multidb = "engine_name" in constructs
        asynchronous = "asyncio" in constructs
        if tree is not None:
            own_code = _own_code(tree)
    return EnvPy(
        path, text, thin, multidb, asynchronous, constructs, tuple(own_code), syntax_error,
    )


def _runtime_call(tree: Any) -> Any:
    """The last call of ``run_migrations(...)`` (or ``runtime.run_migrations(...)``) in env.py."""
    found = None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(
                function, "id", None
            )
            if name == "run_migrations" and (
                not isinstance(function, ast.Attribute)
                or not (isinstance(function.value, ast.Name) and function.value.id == "context")
            ):
                found = node
    return found


def _without_comments(text: str) -> str:
    return "\n".join(line.split("#", 1)[0] if "#" in line else line for line in text.splitlines())


def _own_code(tree: Any) -> list[str]:
    """Functions and ``context.configure()`` arguments that no stock env.py had."""
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name not in _STOCK_FUNCTIONS:
                found.append(f"{node.name}() (line {node.lineno})")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "configure"
        ):
            for keyword in node.keywords:
                if keyword.arg is not None and keyword.arg not in _STOCK_CONFIGURE_ARGS:
                    found.append(f"configure({keyword.arg}=...) (line {node.lineno})")
    return found


@dataclass(frozen=True)
class ScriptTemplate:
    """What a migrations folder's script.py.mako is.

    :param multidb: it writes ``upgrade_<name>()`` functions, one pair per database.
    :param ours: it is one of this package's stock templates (possibly edited).
    :param config_binds: it lists the databases from ``SQLALCHEMY_BINDS`` (Flask-Migrate 2.x),
        which misses binds configured otherwise and invents a default database in a
        binds-only application.
    :param strict_dispatch: its ``upgrade(engine_name)`` fails for a database that has no
        ``upgrade_<name>()`` (Flask-Migrate 2.x's ``globals()["upgrade_%s" % ...]``).
    """

    path: str
    text: str
    multidb: bool
    ours: bool
    config_binds: bool
    strict_dispatch: bool


def read_script_template(folder: str) -> ScriptTemplate | None:
    """Analyse ``folder/script.py.mako``; None when there is none."""
    path = os.path.join(folder, "script.py.mako")
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    return ScriptTemplate(
        path,
        text,
        multidb="upgrade_${" in text,
        ours="flask_migrate.runtime" in text or "Identifiers Alembic reads" in text,
        config_binds="SQLALCHEMY_BINDS" in text,
        strict_dispatch=bool(STRICT_DISPATCH.search(text)),
    )


#: Flask-Migrate 2.x's dispatch in revision files, which fails for a database added later.
STRICT_DISPATCH = re.compile(r"""globals\(\)\s*\[\s*["'](?:up|down)grade_%s["']\s*%""")


# --- Compatibility for old env.py files --------------------------------------------------------


is_fsa3 = binds.is_fsa3


class DatabaseView:
    """A Flask-SQLAlchemy 3 object, as env.py files written for Flask-SQLAlchemy 2 use it.

    Every attribute is the object's own, except :meth:`get_engine`, which also accepts 2.x's
    ``get_engine(app, bind)``: Flask-SQLAlchemy 3 takes ``get_engine(bind_key)`` only, so the
    multi-database env.py of Flask-Migrate 2.x failed with a ``TypeError``.
    """

    def __init__(self, db: Any) -> None:
        object.__setattr__(self, "__wrapped__", db)

    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "__wrapped__"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __eq__(self, other: Any) -> bool:
        return other is self or other is self.__wrapped__

    def __hash__(self) -> int:
        return hash(self.__wrapped__)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def get_engine(self, app: Any = None, bind: Any = None, **kwargs: Any) -> Any:
        """The engine of ``bind`` (None: the default database), called as in 2.x or 3.x."""
        if isinstance(app, str):  # 3.x: get_engine("users")
            app, bind = None, app
        key = kwargs.pop("bind_key", bind)
        try:
            return self.__wrapped__.engines[key]
        except KeyError:
            raise MigrateError(
                f"env.py asked for the engine of bind '{key}', which the application does not "
                "configure; check SQLALCHEMY_BINDS"
            ) from None


@contextlib.contextmanager
def old_env_support(config: Any) -> Iterator[None]:
    """While a command runs an env.py that is not one of ours, give it what it expects.

    On Flask-SQLAlchemy 3, ``app.extensions['migrate'].db`` is a :class:`DatabaseView` for the
    length of the command, so that 2.x's ``get_engine(app, bind)`` works; it is the
    Flask-SQLAlchemy object itself again afterwards, and always for our own env.py files.
    """
    record = current_app.extensions.get("migrate") if has_app_context() else None
    if record is None or not is_fsa3(record.db):
        yield
        return
    env = read_env(config.get_main_option("script_location") or "")
    if env is None or env.thin:
        yield
        return
    saved = record.db
    record.db = DatabaseView(saved)
    try:
        yield
    finally:
        record.db = saved


def real_url(value: str) -> str:
    """The URL an env.py meant, when SQLAlchemy 2's ``str(url)`` masked its password.

    Env.py files written for SQLAlchemy 1.x pass ``str(engine.url)`` (with ``%`` doubled) to
    ``config.set_main_option('sqlalchemy.url', ...)``; SQLAlchemy 2 renders the password as
    ``***`` there, and the connection would fail.  When ``value`` is exactly the masked form of
    one of the application's database URLs, that URL is returned instead, ``%`` doubled; any
    other value is returned unchanged.  The real URL only ever lives in the in-memory config.
    """
    if _PASSWORD_MASK not in value or not has_app_context():
        return value
    record = current_app.extensions.get("migrate")
    if record is None:
        return value
    for name in binds.database_names(record, multidb=True):
        try:
            url = binds.engine(record, name).url
        except Exception:  # a database the app cannot reach here is not the one meant
            continue
        masked = url.render_as_string(hide_password=True)
        if value in (masked, masked.replace("%", "%%")):
            return url.render_as_string(hide_password=False).replace("%", "%%")
    return value


# --- Autogenerate guard ------------------------------------------------------------------------


def bind_key_problem(env: EnvPy | None, record: Any) -> str | None:
    """Why ``env`` would hand autogenerate no models for the binds, or None if it would not.

    Flask-Migrate 2.x's multi-database env.py picks each bind's tables from ``db.metadata`` by
    ``table.info['bind_key']``.  Flask-SQLAlchemy 3 keeps one ``MetaData`` per bind and sets no
    such marker, so every bind would be compared with no models at all.
    """
    if env is None or env.thin or record is None:
        return None
    if "bind_key_filter" not in env.constructs or "metadatas" in env.constructs:
        return None
    db = getattr(record.db, "__wrapped__", record.db)
    if not is_fsa3(db):
        return None
    names = [name for name in binds.database_names(record, multidb=True) if name]
    if not names:
        return None
    return (
        f"{os.path.relpath(env.path)} was written for Flask-SQLAlchemy 2: it picks each bind's "
        "tables from db.metadata by table.info['bind_key'], which Flask-SQLAlchemy 3 no longer "
        "sets, so autogenerate would propose dropping every table of the "
        f"bind{'s' if len(names) > 1 else ''} {', '.join(names)}"
    )


def refuse_unsafe_env(config: Any) -> None:
    """Raise :class:`MigrateError` before an autogenerate run whose env.py cannot be right."""
    record = current_app.extensions.get("migrate") if has_app_context() else None
    problem = bind_key_problem(read_env(config.get_main_option("script_location")), record)
    if problem:
        raise MigrateError(
            f"{problem}; autogenerate was not run: run 'db doctor' for the details and "
            "'db doctor --fix' to switch to the current env.py (the old one is kept as a backup)"
        )


def _database_of(token: str | None) -> str | None:
    """The database an autogenerate token is for (``users_upgrades`` -> ``users``)."""
    if token == "upgrades":
        return ""
    if token and token.endswith("_upgrades"):
        return token[: -len("_upgrades")]
    return None


def _wipe_problem(name: str, upgrade_ops: Any, existing: set[str]) -> str | None:
    """Why these operations look like env.py gave the wrong models, or None."""
    from alembic.operations import ops

    if not has_app_context() or not existing:
        return None
    record = current_app.extensions.get("migrate")
    if record is None:
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


def autogenerate_guard(migration_context: Any, revision: Any, directives: list[Any]) -> None:
    """``process_revision_directives`` for ``command.revision``: refuse a wiping revision.

    Alembic calls it once per database, before env.py's own hook, right after it compared that
    database: the last ``UpgradeOps`` is the one just filled.
    """
    if not directives or migration_context.connection is None:
        return
    upgrade_ops = directives[0].upgrade_ops_list[-1]
    name = _database_of(upgrade_ops.upgrade_token)
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
    record = current_app.extensions.get("migrate") if has_app_context() else None
    if record is None:
        return
    for upgrade_ops in revision_context.generated_revisions[-1].upgrade_ops_list:
        name = _database_of(upgrade_ops.upgrade_token)
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
