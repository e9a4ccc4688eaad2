"""The exceptions the Python API raises, and the one translation of Alembic's own errors.

Every failure a user can cause is a :class:`MigrateError`: one sentence that names the problem
and what to do, and the exit status a command-line front-end should use.  The API raises these;
only the front-ends (see :mod:`flask_migrate.dispatch`) turn them into ``Error: ...`` and an exit
status.  :func:`translate` is the one place where other exceptions (Alembic's, the database
driver's, the operating system's, those of the user's own revision scripts) become ours.
This module imports nothing else from the package.
"""
from __future__ import annotations

import errno
import os
import re
from typing import Any, Sequence


class MigrateError(Exception):
    """A migration command failed in a way the user can understand and fix.

    ``str(error)`` is the complete message, written to be shown as is.
    """

    #: The exit status a command-line front-end uses for this error.
    exit_code = 1


class UsageError(MigrateError):
    """The command was invoked with arguments that cannot work (exit status 2)."""

    exit_code = 2


class RevisionScriptError(MigrateError):
    """A revision script written by the user raised while it was imported or run.

    :param problem: what happened, naming the revision and its file.
    :param original: the exception the script raised; its traceback is the user's to read.
    :param filename: the script's path.
    :param state: where the failure left the database, when that is known.
    """

    def __init__(
        self, problem: str, original: BaseException, filename: str, state: str | None = None
    ) -> None:
        parts = [problem, state, "fix the script, then run the command again"]
        super().__init__("; ".join(part for part in parts if part))
        self.problem = problem
        self.original = original
        self.filename = filename
        self.state = state

    def with_state(self, state: str) -> RevisionScriptError:
        """The same error, also saying where the database was left (``state``)."""
        return RevisionScriptError(self.problem, self.original, self.filename, state)


class ConnectionLost(MigrateError):
    """The connection to the database broke while a command ran: the server stopped, or an
    administrator ended the session.

    Whatever the database had not committed is gone with the session; the next run continues
    from where the database is.

    :param during: what was running, e.g. ``revision 1a2b ("add users") in migrations/...``.
    :param reason: the driver's words, on one line.
    :param command: for a command that migrates, the command to run again (``upgrade``); the
        message then says where the database was left (``state``), or that it could not be read.
    :param state: where the database was left, when that could be read afterwards.
    """

    def __init__(
        self, during: str, reason: str, command: str | None = None, state: str | None = None
    ) -> None:
        parts = [f"the connection to the database was lost during {during} ({reason})"]
        if command is None:
            parts.append("run the command again once the database is reachable")
        else:
            parts.append(
                state or "where it was left could not be read: check 'db current' once it is back"
            )
            parts.append(f"run 'db {command}' again to continue")
        super().__init__("; ".join(parts))
        self.during = during
        self.reason = reason

    def with_state(self, command: str, state: str | None) -> ConnectionLost:
        """The same error from a command that migrates: where the database was left (None:
        unknown), and the command to run again."""
        return ConnectionLost(self.during, self.reason, command, state)


class ChangesDetected(MigrateError):
    """``check`` found model changes that no revision covers yet."""


# Alembic reports most user mistakes as ``CommandError`` (or ``util.CommandError``) with a
# message written for its own ``alembic`` command.  These rules add what a Flask-Migrate user
# should do next, and the class (so the exit status) of the error; anything unmatched is passed
# through unchanged, as one line.
_ALEMBIC_HINTS: list[tuple[re.Pattern[str], str, type[MigrateError]]] = [
    (re.compile(r"Multiple revisions start with '([^']*)': (.*?)\.*$"),
     "revision '{0}' is ambiguous: more than one revision id starts with it ({1}); give "
     "more of the id (see 'db history')", MigrateError),
    (re.compile(r"Multiple heads? are present|Multiple head revisions"),
     "several head revisions are present; run 'db heads' to see them and 'db merge heads' "
     "to join them, or name a single target revision", MigrateError),
    (re.compile(r"Target database is not up to date"),
     "the database is not up to date; run 'db upgrade' first", MigrateError),
    (re.compile(r"Can't locate revision identified by '([^']*)'"),
     "revision '{0}' is not in the migrations folder; run 'db history' to list the "
     "revisions it has", MigrateError),
    (re.compile(r"No such revision or branch '([^']*)'"),
     "revision '{0}' is not in the migrations folder; run 'db history' to list the "
     "revisions it has", MigrateError),
    (re.compile(r"Revision ([0-9a-zA-Z_]+) is not a head revision"),
     "revision {0} is not a head revision; pass a head (see 'db heads') or use --splice",
     MigrateError),
    (re.compile(r"Relative revision ([+-]?\d+) didn't produce"),
     "the relative revision {0} goes past the end of the history (base or head); run 'db "
     "current' and 'db history' to choose a target, or name 'base' or 'head'", MigrateError),
    (re.compile(r"Ambiguous walk"),
     "a relative step (like -1 or +2) cannot be followed through a merge point or a branch "
     "point; name the target revision instead (see 'db history' and 'db current')",
     MigrateError),
    (re.compile(r"Revision (\S+) is not an ancestor of revision (\S+)"),
     "revision {0} is not an ancestor of {1}, so the range is empty or runs backwards; a range "
     "goes from older to newer, e.g. -r base:head or -r -3:", MigrateError),
    (re.compile(r"No such branch: 'heads?'"),
     "the range starts before the first revision; use a smaller step or -r base:head",
     MigrateError),
    (re.compile(r"cannot proceed in --sql mode; batch mode with dialect (\w+)"),
     "a revision alters a table in batch mode (render_as_batch), which on {0} rebuilds the "
     "table from the live schema, so --sql cannot write it; run the upgrade against a copy of "
     "the database instead, or write that revision's SQL by hand", MigrateError),
    (re.compile(r"Path (.+?) is not represented in current version locations"),
     "the folder {0} is not one of the migrations folder's version locations; add it to "
     "version_locations in alembic.ini, or pass one of those to --version-path", MigrateError),
    (re.compile(r"Error executing editor \(No suitable editor found"),
     "no editor was found; set EDITOR to the command of your editor, e.g. EDITOR=nano",
     MigrateError),
    (re.compile(r"Error executing editor \((.*)\)$"),
     "the editor failed ({0}); set EDITOR to the command of an editor that works here",
     MigrateError),
    (re.compile(r"Directory (.+) already exists and is not empty"),
     "the folder {0} already exists and is not empty; choose another folder with -d or "
     "remove it", MigrateError),
    (re.compile(r"Path doesn't exist: (.+?)\.?\s*Please use the 'init' command"),
     "no migrations folder at {0}; run 'db init' to create one, or pass -d with its path",
     MigrateError),
]

_UNKNOWN_REVISION = re.compile(
    r"Can't locate revision identified by '([^']*)'|No such revision or branch '([^']*)'"
)


def from_alembic(error: BaseException, named: Sequence[str] | None = None) -> MigrateError:
    """Translate one of Alembic's ``CommandError`` exceptions into a :class:`MigrateError`.

    The message keeps Alembic's facts (revision ids, paths) and adds what to do next.

    :param named: the revisions the user gave the command (targets, ranges, heads), if known.
        An unknown revision that is none of them was read from the database.
    """
    text = " ".join(str(error).split())
    # Alembic rewords its revision errors for the command line; the original, kept as the
    # cause, tells an ambiguous prefix from a missing revision.
    cause = error.__cause__
    if cause is not None and _is_revision_error(cause):
        text = " ".join(str(cause).split()) or text
    unknown = _UNKNOWN_REVISION.search(text)
    if unknown and named is not None:
        revision = unknown.group(1) or unknown.group(2)
        if not any(revision in given for given in named):
            return MigrateError(
                f"the database is at revision {revision}, which the migrations folder does "
                "not have; restore that revision's file (or use the right -d), or run 'db "
                "stamp --purge REVISION' to record the revision the schema really matches"
            )
    for pattern, hint, kind in _ALEMBIC_HINTS:
        match = pattern.search(text)
        if match:
            return kind(hint.format(*match.groups()))
    return MigrateError(text or type(error).__name__)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep

_URL_PASSWORD = re.compile(r"(\w[\w+.-]*://[^:/@\s]*:)[^@\s]+@")


def mask_passwords(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL masked."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def describe(error: BaseException) -> str:
    """The first meaningful text of an exception, on one line, passwords masked."""
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split()) or type(original).__name__
    return mask_passwords(text)


def _user_frame(error: BaseException, folder: str) -> tuple[str, dict[str, Any]] | None:
    """The innermost frame of ``error`` that runs a file of the migrations folder, if any:
    its file and its globals (the module's, of any type)."""
    found = None
    folder = os.path.abspath(folder) + os.sep
    traceback = error.__traceback__
    while traceback is not None:
        filename = os.path.abspath(traceback.tb_frame.f_code.co_filename)
        if filename.startswith(folder):
            found = filename, traceback.tb_frame.f_globals
        elif filename.startswith(_PACKAGE_DIR) and found and found[0].endswith("env.py"):
            # env.py called into this package: what fails from here on is not env.py's doing
            # (it may still be a revision script's, found further down).
            found = None
        traceback = traceback.tb_next
    syntax_file = getattr(error, "filename", None)
    if isinstance(error, SyntaxError) and syntax_file:
        if os.path.abspath(syntax_file).startswith(folder):
            found = os.path.abspath(syntax_file), {}
    return found


def translate(
    error: BaseException, folder: str, named: Sequence[str] | None = None
) -> MigrateError | None:
    """The :class:`MigrateError` for an exception a command raised; None if it is a bug of ours.

    :param folder: the migrations folder, to recognise failures of the user's own scripts.
    :param named: the revisions the user gave the command, if known (see :func:`from_alembic`).
    """
    if isinstance(error, MigrateError):
        return error
    if isinstance(error, BrokenPipeError):
        # The reader of our output went away (``db history | head``): nobody to tell.
        return MigrateError("the output was closed before the command finished")
    if type(error).__module__.startswith("mako."):
        # A template (script.py.mako, or a custom template of 'init -t') that Mako cannot
        # render; its message names the file and line.
        return MigrateError(
            f"a template cannot be rendered: {describe(error)}; fix that file, or use a stock "
            "template"
        )
    if isinstance(error, ImportError) and str(error).startswith("Can't find Python file"):
        # Alembic's own words when env.py is missing (or not a file).
        return MigrateError(
            f"the migrations folder {os.path.relpath(folder)} has no env.py; restore it (e.g. "
            "from version control), or run 'db doctor --fix' to write the current template's"
        )
    history = _history_problem(error, folder)
    if history is not None:
        return history
    if _is_alembic_error(error):
        # Alembic's own complaint, even when the user's env.py or revision called the code that
        # raised it (e.g. a 'database not up to date' from an old env.py): the fix is not there.
        return from_alembic(error, named)
    user = _user_frame(error, folder)
    if _is_database_error(error) and getattr(error, "connection_invalidated", False):
        # SQLAlchemy recognised a disconnect: not the script's fault, whichever one ran it.
        during = _subject(*user) if user is not None else "the run"
        return ConnectionLost(during, _first_line(error))
    if user is not None:
        filename, globals_ = user
        return RevisionScriptError(
            f"{_subject(filename, globals_)} failed: {type(error).__name__}: "
            f"{describe(error)}", error, filename
        )
    if isinstance(error, KeyError) and _raised_in(error, _ALEMBIC_REVISION_MAP):
        # Alembic only warns about a down_revision it cannot find, then fails on the lookup.
        missing = str(error.args[0]) if error.args else "?"
        referrers = _files_mentioning(folder, missing)
        where = f" in {referrers[0]}" if referrers else ""
        return MigrateError(
            f"a revision file{where} names down_revision '{missing}', which is not in the "
            "migrations folder; correct its down_revision, or restore the missing revision file"
        )
    if isinstance(error, OSError) and error.errno == errno.ENOTDIR and error.filename:
        in_the_way = _file_in_the_way(str(error.filename))
        if in_the_way is not None:
            return MigrateError(
                f"{os.path.relpath(in_the_way)} is a file, where a folder is needed; move the "
                "file away, or pass -d with the path of the migrations folder"
            )
    if isinstance(error, OSError) and error.filename:
        return MigrateError(
            f"cannot use {error.filename}: {error.strerror or describe(error)}; check that "
            "it exists and that you may write to it"
        )
    database = _database_problem(error) if _is_database_error(error) or _is_driver_error(
        error) else None
    if database is not None:
        return database
    if _is_database_error(error):
        return MigrateError(f"the database reported an error: {describe(error)}")
    if _is_driver_error(error):
        # The driver's own exception, raised on its connection outside SQLAlchemy (e.g. a
        # SQLite file that is not a database, found when the run sets up its transactions).
        return MigrateError(
            f"the database reported an error: {describe(error)}; check that the application's "
            "database URL names a database of the right kind"
        )
    return None


def _subject(filename: str, globals_: dict[str, Any]) -> str:
    """How a file of the migrations folder is named in a message: env.py, or a revision by its
    id and the first line of its docstring."""
    where = os.path.relpath(filename)
    if os.path.basename(filename) == "env.py":
        return f"env.py ({where})"
    revision = globals_.get("revision") or _revision_id_in(filename)
    summary = (globals_.get("__doc__") or "").strip().splitlines()
    subject = f"revision {revision}" if revision else "revision file"
    if summary:
        subject += f' ("{summary[0]}")'
    return f"{subject} in {where}"


def _first_line(error: BaseException) -> str:
    """The first line of what the driver said (psycopg2 goes on with advice for psql users)."""
    original = getattr(error, "orig", None) or error
    text = str(original)
    if len(original.args) == 2 and isinstance(original.args[0], int):
        text = str(original.args[1])  # MySQL drivers: (error code, message)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return mask_passwords(lines[0]) if lines else type(original).__name__


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or while handling, innermost last."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


_NOT_A_REVISION_FILE = re.compile(r"Could not determine revision id from filename (\S+?)\.?\s")
_RENDER_FAILED = re.compile(r"Template rendering failed; see (\S+) for a template-oriented")


def _history_problem(error: BaseException, folder: str) -> MigrateError | None:
    """The revision files do not make one history: a cycle, a revision id used twice, a file
    of the versions folder that is no revision, a template that cannot be rendered."""
    from alembic.script.revision import CycleDetected, DependencyCycleDetected, LoopDetected

    for link in _chain(error):
        if isinstance(link, CycleDetected):
            # (A dependency self-loop nests its one revision in a list of its own.)
            given = [link.revisions] if isinstance(link.revisions, str) else link.revisions
            revisions = [str(rev) for item in given
                         for rev in ([item] if isinstance(item, str) else item)]
            files = [path for rev in revisions for path in _revision_files(folder, rev)]
            where = f" ({', '.join(files)})" if files else ""
            what = "depends_on" if isinstance(link, DependencyCycleDetected) else "down_revision"
            if isinstance(link, LoopDetected):
                return MigrateError(
                    f"revision {', '.join(revisions)}{where} names itself in its {what}; "
                    f"correct its {what}"
                )
            return MigrateError(
                f"the history has a cycle: revisions {', '.join(revisions)}{where} lead back "
                f"to each other through {what}; correct the {what} of one of them so that "
                "the history runs one way (see 'db history' once it loads)"
            )
        if isinstance(link, UserWarning) and "is present more than once" in str(link):
            revision = str(link).split()[1]
            files = _revision_files(folder, revision)
            return MigrateError(
                f"revision id {revision} is used by more than one file "
                f"({', '.join(files) or 'in the versions folder'}); remove the copy, or give "
                "one of them a new revision id (and update the down_revision that names it)"
            )
    text = " ".join(str(error).split())
    not_a_revision = _NOT_A_REVISION_FILE.search(text + " ")
    if not_a_revision:
        name = not_a_revision.group(1)
        paths = [
            os.path.relpath(os.path.join(root, name))
            for root, _dirs, names in os.walk(folder) if name in names
        ]
        return MigrateError(
            f"{paths[0] if paths else name} is not a revision file: it sets no 'revision = "
            "...' (an empty or truncated file?); restore it (e.g. from version control), or "
            "move it out of the versions folder"
        )
    rendering = _RENDER_FAILED.search(text)
    if rendering:
        where, problem = _template_report(rendering.group(1))
        return MigrateError(
            f"a template cannot be rendered: {problem}{where} (Mako's report: "
            f"{rendering.group(1)}); fix that file, or restore it from version control"
        )
    return None


def _revision_files(folder: str, revision: str) -> list[str]:
    """The Python files below ``folder`` that say ``revision = '<revision>'`` (relative paths)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                if _revision_id_in(path) == revision:
                    found.append(os.path.relpath(path))
    return found


def _template_report(path: str) -> tuple[str, str]:
    """From the report Alembic writes when a template fails: where (`` in FILE, line N``)
    and what (the exception's last line)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            lines = [line.strip() for line in file if line.strip()]
    except OSError:
        return "", "see the report"
    frames = [line for line in lines if line.startswith("File ") and ".mako" in line]
    where = ""
    if frames:
        match = re.match(r'File "([^"]+)", line (\d+)', frames[-1])
        if match:
            where = f" in {os.path.relpath(match.group(1))}, line {match.group(2)}"
    return where, (lines[-1] if lines else "see the report")


def _file_in_the_way(path: str) -> str | None:
    """The nearest ancestor of ``path`` that is a file (an ENOTDIR's cause), if any."""
    parent = os.path.dirname(os.path.abspath(path))
    while parent and parent != os.path.dirname(parent):
        if os.path.isfile(parent):
            return parent
        parent = os.path.dirname(parent)
    return None


_LOCKED = re.compile(r"database is locked|database table is locked")
_NO_VERSION_COLUMN = re.compile(
    r"no such column: (?:\S+\.)?version_num|column \S*version_num\S* does not exist|"
    r"Unknown column \S*version_num",
    re.I,
)


def _database_problem(error: BaseException) -> MigrateError | None:
    """A database error with a known cause: a lock held elsewhere, a foreign version table."""
    text = describe(error)
    if _LOCKED.search(text):
        return MigrateError(
            "the database is locked: another process (the running application, or another "
            "migration) holds a transaction on it; try again once that is done, or stop the "
            "process that holds it"
        )
    if _NO_VERSION_COLUMN.search(text):
        statement = str(getattr(error, "statement", "") or "")
        table = re.search(r"\bFROM\s+(\S+)", statement)
        name = table.group(1).strip('"`') if table else "alembic_version"
        return MigrateError(
            f"the table {name} in the database is not Alembic's version table (it has no "
            "version_num column): another table has its name; rename that table, or give "
            "Flask-Migrate's another name with Migrate(app, db, version_table='...') and 'db "
            "stamp' the revision the schema is at"
        )
    return None


def unexpected(error: BaseException) -> str:
    """The one line for an exception nobody translated: a bug, here or in a library."""
    return (
        f"unexpected {type(error).__name__}: {describe(error)}; this is a bug in "
        "Flask-Migrate or in a library it uses: run the command again with "
        "FLASK_MIGRATE_TRACEBACK=1 to see the traceback for a bug report"
    )


_REVISION_ASSIGNMENT = re.compile(r"""^revision\s*(?::[^=]*)?=\s*['"]([^'"]+)['"]""", re.M)


def _revision_id_in(filename: str) -> str | None:
    """The ``revision = '...'`` of a file that failed before it could set it, read as text."""
    try:
        with open(filename, encoding="utf-8", errors="replace") as file:
            match = _REVISION_ASSIGNMENT.search(file.read())
    except OSError:
        return None
    return match.group(1) if match else None


_ALEMBIC_REVISION_MAP = os.path.join("alembic", "script", "revision.py")


def _raised_in(error: BaseException, path_suffix: str) -> bool:
    """Whether the innermost frame of ``error``'s traceback is in a file ending ``path_suffix``."""
    traceback = error.__traceback__
    if traceback is None:
        return False
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    return traceback.tb_frame.f_code.co_filename.endswith(path_suffix)


def _files_mentioning(folder: str, text: str) -> list[str]:
    """The Python files below ``folder`` whose source contains ``text`` (relative paths)."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                with open(path, encoding="utf-8", errors="replace") as file:
                    if text in file.read():
                        found.append(os.path.relpath(path))
    return found


def _is_revision_error(error: BaseException) -> bool:
    from alembic.script.revision import RevisionError

    return isinstance(error, RevisionError)


def _is_alembic_error(error: BaseException) -> bool:
    from alembic.util import CommandError

    return isinstance(error, CommandError)


def _is_database_error(error: BaseException) -> bool:
    from sqlalchemy.exc import DBAPIError

    return isinstance(error, DBAPIError)


def _is_driver_error(error: BaseException) -> bool:
    """Whether ``error`` is a DB-API driver's exception (PEP 249 names its base ``Error``,
    with ``DatabaseError`` and ``InterfaceError`` below it)."""
    names = {cls.__name__ for cls in type(error).__mro__}
    module = type(error).__module__.split(".")[0]
    return bool(names & {"DatabaseError", "InterfaceError"}) and module not in (
        "builtins", "sqlalchemy", "flask_migrate",
    )
