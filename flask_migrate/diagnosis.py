"""``db doctor``: the diagnosis of a migrations folder against the installed stack.

:func:`diagnose` reads a migrations folder (env.py, script.py.mako, alembic.ini, the revision
files) and the application's configuration, and lists what cannot work, or is unsafe, on the
installed Flask-SQLAlchemy, SQLAlchemy and Alembic: a :class:`Diagnosis`, whose findings each
have a stable id, a severity and a remedy.  It never connects to a database and never changes
a file.  :func:`examine` is the command: the diagnosis and, with ``fix``, the rewrite of env.py
and script.py.mako to the current template of the same kind (:mod:`flask_migrate.repair`),
followed by the diagnosis of the folder as rewritten.  Nothing here prints: the command line
renders the returned :class:`Diagnosis` (:meth:`Diagnosis.render`).

The module is not named ``doctor``: importing it would replace the API function
``flask_migrate.doctor`` with the module.  The command-line function is
:func:`flask_migrate.commands.doctor`.
"""
from __future__ import annotations

import ast
import configparser
import os
import shutil
import textwrap
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from typing import Any, TextIO

import alembic
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from .config import Config
from .errors import MigrateError, describe, translate
from .extension import require_record
from .folder import STRICT_DISPATCH, EnvPy, MigrationsFolder, ScriptTemplate
from .repair import Rewritten, engines_of, is_async, rewrite
from .runtime import binds

ERROR, WARNING, NOTE = "error", "warning", "note"
_ORDER = {ERROR: 0, WARNING: 1, NOTE: 2}
_FIX = "run 'db doctor --fix'"

#: The sections ``logging.config.fileConfig`` requires.
_LOGGING_SECTIONS = ("loggers", "handlers", "formatters")


@dataclass(frozen=True)
class Finding:
    """One thing the diagnosis found, in the manner of Django's system checks.

    :param id: what was found, stable across releases (e.g. ``env-fileconfig-no-logging``),
        for code and tests to match on.
    :param severity: ``error`` (a command fails or does damage), ``warning`` (it works, but
        unsafely or not for long) or ``note`` (worth knowing).
    :param subject: the file or topic, e.g. ``env.py``.
    :param problem: what is wrong, one sentence.
    :param remedy: what to do about it.
    :param fixable: ``doctor --fix`` resolves it.
    """

    id: str
    severity: str
    subject: str
    problem: str
    remedy: str = ""
    fixable: bool = False


@dataclass(frozen=True)
class RevisionFile:
    """What the diagnosis reads from one revision file, without importing it."""

    path: str
    functions: frozenset[str]
    plain: bool  # upgrade() takes no argument: written for a single-database folder
    strict_dispatch: bool  # Flask-Migrate 2.x's globals()["upgrade_%s" % engine_name]


@dataclass(frozen=True)
class Repair:
    """What ``doctor --fix`` did, and what the diagnosis finds in the folder afterwards."""

    rewritten: Rewritten
    after: list[Finding]


@dataclass
class Diagnosis:
    """The state of one migrations folder against the installed stack.

    ``findings`` are those of the folder as it was read; after ``doctor --fix`` rewrote files,
    ``repair.after`` holds those of the folder as rewritten, and :attr:`remaining` is the list
    that counts.
    """

    folder: str
    env: EnvPy | None
    script: ScriptTemplate | None
    template: str | None  # the stock template env.py should be; None if unknown
    facts: list[tuple[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    #: ``--fix`` was asked for.
    fix: bool = False
    #: What ``--fix`` rewrote; None when it was not asked for or had nothing to rewrite.
    repair: Repair | None = None

    def add(self, severity: str, subject: str, problem: str, remedy: str = "",
            fixable: bool = False, *, id: str) -> None:
        self.findings.append(Finding(id, severity, subject, problem, remedy, fixable))

    @property
    def remaining(self) -> list[Finding]:
        """The findings of the folder as it is now (after ``--fix``, if it rewrote files)."""
        return self.repair.after if self.repair is not None else self.findings

    @property
    def problems(self) -> list[Finding]:
        """The remaining errors and warnings: what makes ``doctor`` exit 1."""
        return [finding for finding in self.remaining if finding.severity != NOTE]

    @property
    def fixable(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.fixable]

    @property
    def ids(self) -> list[str]:
        """The ids of the remaining findings, in report order."""
        return [finding.id for finding in self.remaining]

    @property
    def exit_code(self) -> int:
        """1 while errors or warnings remain, else 0 (notes alone are fine)."""
        return 1 if self.problems else 0

    @property
    def error(self) -> str | None:
        """What the command line ends with while errors or warnings remain: what to do."""
        problems = self.problems
        if not problems:
            return None
        errors = sum(1 for finding in problems if finding.severity == ERROR)
        warnings = len(problems) - errors
        counted = ", ".join(
            text for text in (
                f"{errors} error{'s' if errors != 1 else ''}" if errors else "",
                f"{warnings} warning{'s' if warnings != 1 else ''}" if warnings else "",
            ) if text
        )
        fixable = [finding for finding in problems if finding.fixable]
        if fixable and not self.fix:
            # Findings about revisions or databases are fixed by the new env.py.
            files = sorted({
                "script.py.mako" if finding.subject == "script.py.mako" else "env.py"
                for finding in fixable
            })
            what = (f"run 'db doctor --fix' to rewrite {' and '.join(files)} (backups are "
                    "kept, versions/ is not touched)")
            if len(fixable) < len(problems):
                what += ", and see the report above for the rest"
        else:
            what = "see the report above for what to do"
        return f"the migrations folder needs attention ({counted}); {what}"

    def render(self, out: TextIO) -> None:
        """The report: the facts, a paragraph per finding, and what ``--fix`` did."""
        print(f"Migrations folder {os.path.relpath(self.folder)} (no database was contacted)",
              file=out)
        width = max(len(label) for label, _ in self.facts)
        for label, value in self.facts:
            print(f"  {label.ljust(width)}  {value}", file=out)
        if self.findings:
            print(file=out)
        _print_findings(self.findings, out)
        if self.repair is None:
            if not self.problems:
                print("\nNothing to do: the folder works with the installed stack.", file=out)
            elif self.fix:
                print("\n'--fix' has nothing it can rewrite here.", file=out)
            return
        print(f"\nRewriting with the {self.repair.rewritten.template} template:", file=out)
        self.repair.rewritten.render(out)
        print("\nAfter the rewrite:", file=out)
        _print_findings(self.repair.after, out)
        if not self.problems:
            print("Nothing left to do: the folder works with the installed stack.", file=out)


def _print_findings(findings: list[Finding], out: TextIO) -> None:
    """Each finding as a paragraph: severity, subject and problem, then ``->`` the remedy."""
    width = max(60, min(100, shutil.get_terminal_size((100, 24)).columns))
    indent = " " * 9

    def wrap(text: str, first: str, rest: str) -> str:
        return textwrap.fill(
            text, width, initial_indent=first, subsequent_indent=rest,
            break_long_words=False, break_on_hyphens=False,
        )

    for finding in findings:
        head = f"{finding.severity.upper():<8} "
        print(wrap(f"{finding.subject}: {finding.problem}.", head, indent), file=out)
        if finding.remedy:
            print(wrap(f"{finding.remedy}.", indent + "-> ", indent + "   "), file=out)


# --- The command -------------------------------------------------------------------------------


def examine(config: Config, fix: bool) -> Diagnosis:
    """The diagnosis of ``config``'s folder; with ``fix``, rewrite what can be rewritten first
    and diagnose the result (``diagnosis.repair``)."""
    diagnosis = diagnose(config)
    diagnosis.fix = fix
    if not fix or not diagnosis.fixable:
        return diagnosis
    template = diagnosis.template
    assert template is not None
    old_env = diagnosis.env
    rewrite_env = old_env is None or not old_env.thin or old_env.syntax_error is not None
    names = ["env.py"] if rewrite_env else []
    if any(finding.fixable and finding.subject == "script.py.mako"
           for finding in diagnosis.findings):
        names.append("script.py.mako")
    rewritten = rewrite(diagnosis.folder, template, names)
    after = diagnose(config).findings
    if rewrite_env and old_env is not None and old_env.own_code:
        after.insert(0, Finding(
            "env-own-code-lost", WARNING, "env.py", "the old env.py had code the new one does "
            "not carry: " + ", ".join(old_env.own_code),
            "copy what you still need from the backup into the new env.py's hooks or "
            "run_migrations(...) arguments",
        ))
    diagnosis.repair = Repair(rewritten, after)
    return diagnosis


# --- Diagnosis ---------------------------------------------------------------------------------


def diagnose(config: Config) -> Diagnosis:
    """Examine the migrations folder of ``config`` for the current application."""
    folder = config.migrations_folder()
    if not os.path.isdir(folder):
        raise MigrateError(
            f"no migrations folder at {folder}; run 'db init' to create one, or pass -d with "
            "its path"
        )
    record = require_record()
    # Read afresh: doctor diagnoses again after --fix rewrote the files.
    files = MigrationsFolder(folder)
    env, script = files.env, files.script_template
    revisions, unreadable = _read_revisions(config, folder)
    diagnosis = Diagnosis(folder, env, script, _template_for(env, script, revisions))
    names = binds.database_names(record, multidb=True)
    engines = engines_of(record, names)

    diagnosis.facts = [
        ("installed", _stack()),
        ("env.py", env.kind if env is not None else "missing"),
        ("script.py.mako", _script_kind(script)),
        ("databases", ", ".join(name or "default" for name in names) or "none configured"),
    ]
    _check_env(diagnosis, record, engines)
    _check_script(diagnosis)
    _check_ini(diagnosis, os.path.join(folder, "alembic.ini"))
    heads = _check_revisions(diagnosis, config, revisions, unreadable)
    diagnosis.facts.append(("revisions", _revisions_fact(revisions, unreadable, heads)))
    _check_databases(diagnosis, names, engines, revisions)
    diagnosis.findings.sort(key=lambda finding: _ORDER[finding.severity])
    return diagnosis


def _stack() -> str:
    def version(name: str) -> str:
        try:
            return importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            return "?"

    return (
        f"Flask-SQLAlchemy {version('flask-sqlalchemy')}, SQLAlchemy {sa.__version__}, "
        f"Alembic {alembic.__version__}"
    )


def _script_kind(script: ScriptTemplate | None) -> str:
    if script is None:
        return "missing"
    shape = "multi-database" if script.multidb else "single database"
    if script.ours:
        return f"Flask-Migrate template, {shape}"
    if script.config_binds or script.strict_dispatch:
        return f"Flask-Migrate 2.x template, {shape}"
    return f"an older or custom template, {shape}"


def _template_for(
    env: EnvPy | None,
    script: ScriptTemplate | None,
    revisions: list[RevisionFile],
) -> str | None:
    """The stock template env.py should be: that of env.py's kind, else guessed from the rest."""
    if env is not None and (env.thin or env.syntax_error is None):
        return env.template
    multidb = (script is not None and script.multidb) or any(
        not revision.plain and any(name.startswith("upgrade_") for name in revision.functions)
        for revision in revisions
    )
    return "flask-multidb" if multidb else "flask"


def _check_env(diagnosis: Diagnosis, record: Any, engines: dict[str, Any]) -> None:
    env = diagnosis.env
    template = diagnosis.template
    rewrite = f"{_FIX} to replace it with the {template} template (the old file is kept)"
    if env is None:
        diagnosis.add(ERROR, "env.py", "the folder has no env.py, so every command that reads "
                      "the models or the database fails", rewrite, True, id="env-missing")
        return
    if not env.text.strip():
        diagnosis.add(ERROR, "env.py", "it is empty, so every command that reads the models or "
                      "the database has nothing to run", rewrite, True, id="env-empty")
        return
    if env.syntax_error:
        diagnosis.add(ERROR, "env.py", f"it is not valid Python ({env.syntax_error})",
                      f"repair it, or {rewrite}", template is not None, id="env-invalid")
        return
    async_urls = sorted(name or "default" for name, engine in engines.items() if is_async(engine))
    sync_urls = sorted(
        name or "default" for name, engine in engines.items()
        if engine is not None and not is_async(engine)
    )
    if env.thin:
        if env.asynchronous and sync_urls:
            diagnosis.add(
                ERROR, "env.py", "it is the asyncio kind, but the URL of "
                f"{', '.join(sync_urls)} names no async driver",
                "use URLs such as sqlite+aiosqlite:// or postgresql+asyncpg://, or the flask "
                "template's env.py",
                id="env-async-sync-url",
            )
        return

    if "file_config" in env.constructs and not _has_logging_sections(diagnosis.folder):
        diagnosis.add(
            ERROR, "env.py", "it calls logging.config.fileConfig(), but alembic.ini has no "
            "[loggers], [handlers] and [formatters] sections, so every command fails with "
            "KeyError: 'formatters'", f"{rewrite}, or put the logging sections back", True,
            id="env-fileconfig-no-logging",
        )
    if not env.asynchronous and async_urls:
        diagnosis.add(
            ERROR, "env.py", "it connects synchronously, but the URL of "
            f"{', '.join(async_urls)} names an async driver", rewrite, True,
            id="env-sync-async-url",
        )
    elif env.asynchronous and sync_urls:
        diagnosis.add(
            ERROR, "env.py", "it is the asyncio kind, but the URL of "
            f"{', '.join(sync_urls)} names no async driver",
            "use URLs such as sqlite+aiosqlite://, or replace env.py with the flask template",
            id="env-async-sync-url",
        )
    diagnosis.add(
        NOTE, "env.py", "it is a full env.py of an older Flask-Migrate; it keeps working, with "
        "every guarantee (migration lock, atomic SQLite upgrades, progress, logging put back "
        "after its fileConfig()), which the command establishes around it",
        f"{_FIX} to replace it with the thin {template} env.py, whose hooks are easier to read "
        "and change (the old file is kept)", True,
        id="env-full",
    )
    shims = []
    db = getattr(record.db, "__wrapped__", record.db)
    if "get_engine_app" in env.constructs and binds.is_fsa3(db):
        shims.append("db.get_engine(app, bind) (gone in Flask-SQLAlchemy 3)")
    if (
        "bind_key_filter" in env.constructs and "metadatas" not in env.constructs
        and binds.is_fsa3(db)
    ):
        shims.append("table.info['bind_key'] to find each bind's tables (not set by "
                     "Flask-SQLAlchemy 3)")
    if "str_url" in env.constructs and not sa.__version__.startswith("1."):
        shims.append("str(engine.url) (password masked by SQLAlchemy 2)")
    if shims:
        diagnosis.add(NOTE, "env.py", f"it uses {' and '.join(shims)}; Flask-Migrate keeps "
                      f"{'these' if len(shims) > 1 else 'this'} working", id="env-old-constructs")
    if env.own_code:
        diagnosis.add(
            NOTE, "env.py", "it has code no stock env.py had: " + ", ".join(env.own_code),
            "after 'db doctor --fix', move it into the new env.py's hooks (include_object, "
            "process_revision_directives) or run_migrations(...) arguments",
            id="env-own-code",
        )


def _has_logging_sections(folder: str) -> bool:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(os.path.join(folder, "alembic.ini"), encoding="utf-8")
    except configparser.Error:
        return False
    return all(parser.has_section(section) for section in _LOGGING_SECTIONS)


def _check_script(diagnosis: Diagnosis) -> None:
    script = diagnosis.script
    multidb = diagnosis.template is not None and diagnosis.template.endswith("multidb")
    rewrite = f"{_FIX} to replace it with the {diagnosis.template} template (the old file is kept)"
    if script is None:
        diagnosis.add(ERROR, "script.py.mako", "the folder has no script.py.mako, so 'db "
                      "migrate' and 'db revision' cannot write revisions", rewrite, True,
                      id="script-missing")
        return
    if not script.text.strip():
        diagnosis.add(ERROR, "script.py.mako", "it is empty, so 'db migrate' and 'db revision' "
                      "cannot write revisions", rewrite, True, id="script-empty")
        return
    if multidb and not script.multidb:
        diagnosis.add(ERROR, "script.py.mako", "env.py migrates several databases, but this "
                      "template writes no upgrade_<name>() functions, so new revisions would "
                      "lose every operation", rewrite, True, id="script-single-for-multidb")
    elif not multidb and script.multidb:
        diagnosis.add(ERROR, "script.py.mako", "env.py migrates one database, but this "
                      "template writes per-database upgrade_<name>() functions, which nothing "
                      "would call", rewrite, True, id="script-multidb-for-single")
    elif multidb and not script.ours and (script.config_binds or script.strict_dispatch):
        diagnosis.add(
            NOTE, "script.py.mako", "it is Flask-Migrate 2.x's multi-database template: it "
            "lists the databases from SQLALCHEMY_BINDS, so a database configured otherwise "
            "(or the default database of an application with binds only) gets no functions in "
            "new revisions; its revisions' dispatch is kept working for databases added later",
            rewrite, True,
            id="script-2x-multidb",
        )


def _check_ini(diagnosis: Diagnosis, path: str) -> None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        found = parser.read(path, encoding="utf-8")
    except configparser.Error as error:
        diagnosis.add(ERROR, "alembic.ini", f"it cannot be parsed ({describe(error)})",
                      "fix or restore the file", id="ini-invalid")
        return
    if not found:
        return
    url = parser.get("alembic", "sqlalchemy.url", fallback="")
    if url and "%(" not in url:
        try:
            password = sa.engine.make_url(url).password
        except Exception:
            password = None
        if password:
            diagnosis.add(
                WARNING, "alembic.ini", "it holds a database URL with a password "
                "(sqlalchemy.url), which Flask-Migrate never reads",
                "remove the sqlalchemy.url line; the URLs come from the application's config",
                id="ini-password",
            )
    env = diagnosis.env
    if env is not None and env.thin and _has_logging_sections(diagnosis.folder):
        diagnosis.add(NOTE, "alembic.ini", "its logging sections ([loggers], [handlers], "
                      "[formatters]) are unused: Flask-Migrate sets up the logging of its "
                      "commands itself", "delete them, or leave them; they do no harm",
                      id="ini-unused-logging")


def _read_revisions(config: Config, folder: str) -> tuple[list[RevisionFile], list[Finding]]:
    """Every revision file's functions, read with ``ast``; those that fail to parse or import."""
    revisions, unreadable = [], []
    try:
        script_directory = ScriptDirectory.from_config(config)
        locations = list(script_directory.version_locations or [script_directory.versions])
    except Exception:
        locations = [os.path.join(folder, "versions")]
    for location in locations:
        if not os.path.isdir(location):
            continue
        for filename in sorted(os.listdir(location)):
            if not filename.endswith(".py") or filename.startswith(("_", ".")):
                continue
            path = os.path.join(location, filename)
            subject = os.path.relpath(path, folder)
            with open(path, encoding="utf-8", errors="replace") as file:
                text = file.read()
            try:
                tree = ast.parse(text, path)
            except SyntaxError as error:
                unreadable.append(Finding(
                    "revision-invalid", ERROR, subject,
                    f"it is not valid Python (line {error.lineno}: {error.msg})",
                    "repair the file, or restore it from version control",
                ))
                continue
            try:
                from alembic.util import load_python_file

                load_python_file(location, filename)
            except Exception as error:
                unreadable.append(Finding(
                    "revision-import-fails", ERROR, subject,
                    f"it fails when imported ({type(error).__name__}: {describe(error)}), so "
                    "every command that reads the history fails",
                    "repair the file, or restore it from version control",
                ))
                continue
            revisions.append(_revision_file(path, tree, text))
    return revisions, unreadable


def _revision_file(path: str, tree: ast.Module, text: str) -> RevisionFile:
    functions = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            functions[node.name] = node
    upgrade = functions.get("upgrade")
    plain = upgrade is not None and not (
        upgrade.args.args or upgrade.args.kwonlyargs or upgrade.args.vararg
        or upgrade.args.kwarg
    )
    return RevisionFile(
        path, frozenset(functions), plain, bool(STRICT_DISPATCH.search(text))
    )


def _check_revisions(
    diagnosis: Diagnosis, config: Config, revisions: list[RevisionFile],
    unreadable: list[Finding],
) -> list[str]:
    diagnosis.findings.extend(unreadable)
    if unreadable:
        return []
    try:
        heads = list(ScriptDirectory.from_config(config).get_heads())
    except Exception as error:
        translated = translate(error, diagnosis.folder) or MigrateError(describe(error))
        diagnosis.add(ERROR, "versions", f"the history cannot be read: {translated}",
                      "repair the revision files named above, or restore them",
                      id="history-unreadable")
        return []
    if len(heads) > 1:
        diagnosis.add(
            ERROR, "versions", f"the history has {len(heads)} heads ({', '.join(heads)}), so "
            "'db upgrade' and 'db migrate' need a single target",
            "run 'db merge heads' to join them",
            id="history-several-heads",
        )
    return heads


def _revisions_fact(
    revisions: list[RevisionFile], unreadable: list[Finding], heads: list[str]
) -> str:
    count = len(revisions) + len(unreadable)
    text = f"{count} file{'s' if count != 1 else ''}"
    if heads:
        text += f", head{'s' if len(heads) > 1 else ''} {', '.join(heads)}"
    return text


def _check_databases(
    diagnosis: Diagnosis, names: list[str], engines: dict[str, Any],
    revisions: list[RevisionFile],
) -> None:
    multidb = diagnosis.template is not None and diagnosis.template.endswith("multidb")
    if not multidb:
        bind_names = [name for name in names if name]
        if bind_names:
            diagnosis.add(
                NOTE, "databases", f"the application configures the bind"
                f"{'s' if len(bind_names) > 1 else ''} {', '.join(bind_names)}, which this "
                "single-database folder does not migrate",
                "run 'db convert-multidb' if they should be migrated too",
                id="databases-binds-not-migrated",
            )
        return
    # One alembic_version table per database: two names on one database would share it.
    seen: dict[str, str] = {}
    for name, engine in engines.items():
        if engine is None or engine.url.database in (None, "", ":memory:"):
            continue
        key = engine.url.render_as_string(hide_password=False)
        if key in seen:
            diagnosis.add(
                ERROR, "databases", f"{seen[key] or 'default'} and {name or 'default'} are "
                f"the same database ({binds.safe_url(engine.url)}), so they would share one "
                "alembic_version table", "give each bind a database of its own",
                id="databases-shared",
            )
        seen.setdefault(key, name)
    # Revisions with a plain upgrade() (from before the folder had several databases) and
    # revisions of 2.x's strict dispatch run per database whatever env.py is
    # (flask_migrate.runtime.revisions), so a database they have no function for is no error.
    in_revisions = {
        function[len("upgrade_"):]
        for revision in revisions for function in revision.functions
        if function.startswith("upgrade_")
    }
    if not revisions:
        return
    for name in names:
        if name in in_revisions:
            continue
        label = f"the bind '{name}'" if name else "the default database"
        diagnosis.add(
            NOTE, "databases", f"{label} appears in no revision yet",
            "'db upgrade' records the head revision in it without changes; then "
            "'db migrate' writes a revision for its tables",
            id="databases-not-in-revisions",
        )
    for name in sorted(in_revisions - set(names)):
        label = f"'{name}'" if name else "the default database"
        diagnosis.add(
            NOTE, "databases", f"revisions have functions for {label}, which the application "
            "does not configure", "upgrade and downgrade leave them out",
            id="databases-not-configured",
        )
