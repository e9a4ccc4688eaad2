"""A migrations folder, read once per command: what its env.py and script.py.mako are.

:class:`MigrationsFolder` is made with the command's ``Config`` (see
:func:`flask_migrate.config.build_config`) and read lazily, each file at most once: whether
env.py is one of our thin templates or a full env.py of an older Flask-Migrate (1.x-4.x) or a
hand-written one, which old constructs it uses (:class:`EnvPy`), and what its script.py.mako
writes (:class:`ScriptTemplate`).  Every part of the package that needs to know asks this
object (:func:`folder_of`) instead of reading the files again.

It imports only :mod:`flask_migrate.config`.
"""
from __future__ import annotations

import ast
import functools
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from .config import ATTR_FOLDER

if TYPE_CHECKING:
    from alembic.config import Config


class MigrationsFolder:
    """The migrations folder at ``path``; each file is read on first use, once."""

    def __init__(self, path: str) -> None:
        self.path = path

    @functools.cached_property
    def env(self) -> EnvPy | None:
        """What env.py is; None when there is none (or it cannot be read)."""
        return read_env(self.path)

    @functools.cached_property
    def script_template(self) -> ScriptTemplate | None:
        """What script.py.mako is; None when there is none."""
        return read_script_template(self.path)

    @property
    def ini_path(self) -> str:
        return os.path.join(self.path, "alembic.ini")

    @property
    def runs_our_runtime(self) -> bool:
        """env.py calls :func:`flask_migrate.runtime.run_migrations` (one of our templates)."""
        return self.env is not None and self.env.thin

    @property
    def old_env(self) -> EnvPy | None:
        """env.py when it is not one of ours (an older Flask-Migrate's, or hand-written)."""
        env = self.env
        return env if env is not None and not env.thin else None


def folder_of(config: Config) -> MigrationsFolder:
    """The :class:`MigrationsFolder` of a command's ``Config``, made on first use."""
    folder: MigrationsFolder | None = config.attributes.get(ATTR_FOLDER)
    location = config.get_main_option("script_location") or ""
    if folder is None or folder.path != location:
        folder = MigrationsFolder(location)
        config.attributes[ATTR_FOLDER] = folder
    return folder


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
    :param explicit_configure_args: keywords that a ``configure()`` call passes by name next
        to a ``**mapping`` (e.g. ``compare_type=True, **...configure_args``): the same key in
        the mapping would be a ``TypeError``, and env.py's own value is the one meant.
    """

    path: str
    text: str
    thin: bool
    multidb: bool
    asynchronous: bool
    constructs: frozenset[str]
    own_code: tuple[str, ...] = ()
    syntax_error: str | None = None
    explicit_configure_args: frozenset[str] = frozenset()

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
    if thin and call is not None:
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
    explicit = _explicit_configure_args(tree) if tree is not None else frozenset()
    return EnvPy(
        path, text, thin, multidb, asynchronous, constructs, tuple(own_code), syntax_error,
        explicit,
    )


def _runtime_call(tree: ast.Module) -> ast.Call | None:
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


def _configure_calls(tree: ast.Module) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "configure"
        ):
            yield node


def _explicit_configure_args(tree: ast.Module) -> frozenset[str]:
    """Keywords given by name to a ``configure()`` call that also spreads a ``**mapping``."""
    found: set[str] = set()
    for call in _configure_calls(tree):
        if any(keyword.arg is None for keyword in call.keywords):
            found.update(keyword.arg for keyword in call.keywords if keyword.arg is not None)
    return frozenset(found)


def _own_code(tree: ast.Module) -> list[str]:
    """Functions and ``context.configure()`` arguments that no stock env.py had."""
    found = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name not in _STOCK_FUNCTIONS:
                found.append(f"{node.name}() (line {node.lineno})")
    for call in _configure_calls(tree):
        for keyword in call.keywords:
            if keyword.arg is not None and keyword.arg not in _STOCK_CONFIGURE_ARGS:
                found.append(f"configure({keyword.arg}=...) (line {call.lineno})")
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
