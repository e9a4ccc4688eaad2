"""Repair of a migrations folder: rewriting its files, and ``db convert-multidb``.

:func:`rewrite` replaces env.py and script.py.mako by a stock template's, keeping each old file
as a backup beside it, and returns what it did (:class:`Rewrite`, with the unified diff);
``db doctor --fix`` (:mod:`flask_migrate.diagnosis`) and :func:`run_convert_multidb`, which
turns a single-database folder into a multi-database one and returns what it did
(:class:`Conversion`), are built on it.  ``versions/`` is never touched.  Nothing here prints:
the command line renders what is returned.

The command-line function is :func:`flask_migrate.commands.convert_multidb`; this module does
the work.
"""
from __future__ import annotations

import contextlib
import difflib
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import Any, Iterable, TextIO

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from .config import TEMPLATES_DIR, Config
from .errors import MigrateError, UsageError, describe
from .extension import require_record
from .folder import MigrationsFolder
from .runtime import binds

_MAKO_BLOCK = re.compile(r"<%!?.*?%>", re.S)


def engines_of(record: Any, names: Iterable[str]) -> dict[str, Any]:
    """Database name -> engine (None where the app cannot make one); nothing connects."""
    found: dict[str, Any] = {}
    for name in names:
        try:
            found[name] = binds.engine(record, name)
        except Exception:
            found[name] = None
    return found


def is_async(engine: Any) -> bool:
    return engine is not None and bool(getattr(engine.dialect, "is_async", False))


# --- Rewriting files ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewrite:
    """One file replaced by a template's.

    :param path: the file.
    :param backup: where the old file was kept; None when there was no old file.
    :param diff: the unified diff from the old text to the new.
    """

    path: str
    backup: str | None
    diff: str

    def render(self, out: TextIO) -> None:
        """The diff, then what became of the old file."""
        out.write(self.diff)
        shown = os.path.relpath(self.path)
        if self.backup:
            print(f"Replaced {shown}; the old file is {os.path.relpath(self.backup)}.", file=out)
        else:
            print(f"Wrote {shown}.", file=out)


@dataclass(frozen=True)
class Rewritten:
    """What :func:`rewrite` did: the files replaced, and the imports the old script.py.mako
    had that the new one lacks."""

    template: str
    files: tuple[Rewrite, ...]
    lost_imports: tuple[str, ...] = ()

    def render(self, out: TextIO) -> None:
        for rewritten in self.files:
            rewritten.render(out)
        if self.lost_imports:
            print("Note: the old script.py.mako imported what the new one does not: "
                  + "; ".join(self.lost_imports) + ". Add those lines back if new revisions "
                  "need them.", file=out)


def _backup_path(path: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = f"{path}.bak-{stamp}"
    number = 1
    while os.path.exists(candidate):
        number += 1
        candidate = f"{path}.bak-{stamp}-{number}"
    return candidate


def _template_text(template: str, filename: str) -> str:
    with open(os.path.join(TEMPLATES_DIR, template, filename), encoding="utf-8") as file:
        return file.read()


def _replace_files(replacements: list[tuple[str, str]]) -> tuple[Rewrite, ...]:
    """Write each ``(path, new_text)``, keeping every old file as a backup.

    Every new text is written to a temporary file first, so a failure (a full disk, a folder
    one may not write to) leaves the old files in place.
    """
    old_texts: dict[str, str | None] = {}
    temporaries: dict[str, str] = {}
    try:
        for path, new_text in replacements:
            old_texts[path] = None
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as file:
                    old_texts[path] = file.read()
            temporary = f"{path}.tmp-{os.getpid()}"
            with open(temporary, "w", encoding="utf-8") as file:
                temporaries[path] = temporary
                file.write(new_text)
    except OSError:
        for temporary in temporaries.values():
            with contextlib.suppress(OSError):
                os.remove(temporary)
        raise
    done = []
    for path, new_text in replacements:
        old_text, shown = old_texts[path], os.path.relpath(path)
        backup = None
        if old_text is not None:
            backup = _backup_path(path)
            shutil.copy2(path, backup)
        os.replace(temporaries[path], path)
        diff = difflib.unified_diff(
            (old_text or "").splitlines(keepends=True), new_text.splitlines(keepends=True),
            fromfile=f"{shown} (old)" if old_text is not None else "/dev/null",
            tofile=f"{shown} (new)",
        )
        text = "".join(line if line.endswith("\n") else line + "\n" for line in diff)
        done.append(Rewrite(path, backup, text))
    return tuple(done)


def _lost_imports(path: str, new_text: str) -> list[str]:
    """Import lines of the script.py.mako at ``path`` that ``new_text`` does not have."""
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as file:
        # Imports inside <% %> blocks serve the template, not the revisions it writes.
        old_lines = _MAKO_BLOCK.sub("", file.read()).splitlines()
    new_lines = set(new_text.splitlines())
    return [
        line for line in old_lines
        if line.startswith(("import ", "from ")) and line not in new_lines
    ]


def rewrite(folder: str, template: str, names: list[str]) -> Rewritten:
    """Replace the files ``names`` (env.py, script.py.mako) of ``folder`` by ``template``'s."""
    replacements = [
        (os.path.join(folder, name), _template_text(template, name)) for name in names
    ]
    lost: list[str] = []
    if "script.py.mako" in names:
        lost = _lost_imports(os.path.join(folder, "script.py.mako"),
                             _template_text(template, "script.py.mako"))
    return Rewritten(template, _replace_files(replacements), tuple(lost))


# --- Single database to multi-database ----------------------------------------------------------


@dataclass(frozen=True)
class Stamped:
    """What ``--stamp-binds`` found or did in one bind's database.

    :param bind: the bind's name.
    :param url: its URL, password masked.
    :param heads: the revisions recorded there now.
    :param already: the database recorded revisions before (``heads``), and was left as it
        was; False when the head revisions were recorded by the conversion.
    """

    bind: str
    url: str
    heads: tuple[str, ...]
    already: bool = False

    def render(self, out: TextIO) -> None:
        if self.already:
            print(f"The bind '{self.bind}' already records {', '.join(self.heads)}: left as it "
                  "is.", file=out)
        else:
            print(f"Recorded {', '.join(self.heads)} in the bind '{self.bind}' ({self.url}).",
                  file=out)


@dataclass(frozen=True)
class Conversion:
    """What ``convert-multidb`` did to a migrations folder.

    A folder that is a multi-database one already is left alone (``rewritten`` is None).
    Once the files are rewritten, a bind whose database cannot be stamped does not undo the
    conversion: :attr:`error` says so, and the command exits 1.
    """

    #: The migrations folder.
    folder: str
    #: The multi-database template the folder now follows; None when it was one already.
    template: str | None = None
    #: env.py and script.py.mako as replaced: their backups and diffs.
    rewritten: Rewritten | None = None
    #: The folder's README was the stock one, and is now the new template's.
    readme_replaced: bool = False
    #: What the old env.py did that the new one does not (a hand-edited env.py).
    lost_code: tuple[str, ...] = ()
    #: The binds of the application: the databases the folder now tracks besides the default.
    binds: tuple[str, ...] = ()
    #: ``stamp_binds`` was asked for, and the folder has revisions to stamp.
    stamping: bool = False
    #: What ``stamp_binds`` did in each bind, in order, up to a failure.
    stamped: tuple[Stamped, ...] = ()
    #: Why a bind could not be stamped (the folder was converted all the same), or None.
    stamp_error: str | None = None

    @property
    def converted(self) -> bool:
        """The files were rewritten (False for a folder that was a multi-database one)."""
        return self.rewritten is not None

    @property
    def exit_code(self) -> int:
        return 1 if self.stamp_error is not None else 0

    @property
    def error(self) -> str | None:
        return self.stamp_error

    def render(self, out: TextIO) -> None:
        """What was rewritten, the binds stamped, and what to do next."""
        shown = os.path.relpath(self.folder)
        if self.rewritten is None:
            print(f"{shown} is already a multi-database folder: nothing to do.", file=out)
            return
        print(f"Converting {shown} to the {self.template} template (versions/ is kept as it "
              "is):", file=out)
        self.rewritten.render(out)
        if self.lost_code:
            print("Warning: the old env.py had code the new one does not carry: "
                  + ", ".join(self.lost_code) + "; copy what you still need from the backup.",
                  file=out)
        for stamped in self.stamped:
            stamped.render(out)
        if self.stamp_error is not None:
            return  # the Error: line says what happened and what to do
        print(file=out)
        print("The existing revisions keep applying to the default database only.", file=out)
        if self.binds and not self.stamping:
            print(f"Next: 'db upgrade' records the head revision in {_list(self.binds)} (the "
                  "existing revisions change nothing there); then 'db migrate' writes a "
                  "revision for their tables.", file=out)
        elif self.binds:
            print("Next: 'db migrate' writes a revision for the tables of the binds.", file=out)
        else:
            print("The application configures no bind yet; add SQLALCHEMY_BINDS, then run 'db "
                  "migrate'.", file=out)


def run_convert_multidb(config: Config, stamp_binds: bool) -> Conversion:
    """Turn the single-database folder of ``config`` into a multi-database folder."""
    folder = config.migrations_folder()
    if not os.path.isdir(folder):
        raise MigrateError(
            f"no migrations folder at {folder}; run 'db init' to create one, or pass -d with "
            "its path"
        )
    env = MigrationsFolder(folder).env
    if env is not None and env.multidb and env.syntax_error is None:
        return Conversion(folder)
    record = require_record()
    names = binds.database_names(record, multidb=True)
    if "" not in names:
        raise MigrateError(
            "the application has no default database (SQLALCHEMY_DATABASE_URI), which the "
            "existing revisions were written for; set it before converting the folder"
        )
    engines = engines_of(record, names)
    # Named with its own message if its URL is unusable (engines_of keeps quiet about it).
    default_url = binds.engine(record, "").url.render_as_string(hide_password=False)
    for name in names[1:]:
        engine = engines[name]
        if engine is not None and engine.url.render_as_string(hide_password=False) == default_url \
                and engine.url.database not in (None, "", ":memory:"):
            raise MigrateError(
                f"the bind '{name}' is the default database ({binds.safe_url(engine.url)}); a "
                "multi-database folder keeps one alembic_version table per database, so give "
                "the bind a database of its own first"
            )
    if stamp_binds:
        for name in names[1:]:
            if is_async(engines[name]):
                raise UsageError(
                    f"--stamp-binds cannot stamp the bind '{name}', whose URL names an async "
                    "driver; convert without it and run 'db upgrade'"
                )
    # Refuse on a broken history before anything is written.
    script_directory = ScriptDirectory.from_config(config)
    heads = list(script_directory.get_heads())
    template = "aioflask-multidb" if env is not None and env.asynchronous else "flask-multidb"
    rewritten = rewrite(folder, template, ["env.py", "script.py.mako"])
    readme_replaced = _replace_readme(folder, template)
    lost_code = env.own_code if env is not None and not env.thin else ()
    bind_names = tuple(names[1:])
    stamping = bool(stamp_binds and heads)
    stamped: list[Stamped] = []
    stamp_error = None
    if stamping:
        try:
            for name in bind_names:
                stamped.append(_stamp_bind(name, engines[name], script_directory))
        except MigrateError as error:
            stamp_error = str(error)
    return Conversion(
        folder, template, rewritten, readme_replaced, tuple(lost_code), bind_names, stamping,
        tuple(stamped), stamp_error,
    )


def _list(names: Iterable[str]) -> str:
    return ", ".join(f"'{name}'" for name in names)


def _replace_readme(folder: str, template: str) -> bool:
    """Replace the folder's README by the new template's, if it is a stock README unchanged;
    whether it did."""
    path = os.path.join(folder, "README")
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError:
        return False
    stock = [
        _template_text(name, "README") for name in os.listdir(TEMPLATES_DIR)
        if os.path.isfile(os.path.join(TEMPLATES_DIR, name, "README"))
    ]
    if text in stock:
        with open(path, "w", encoding="utf-8") as file:
            file.write(_template_text(template, "README"))
        return True
    return False


def _stamp_bind(name: str, engine: Any, script_directory: ScriptDirectory) -> Stamped:
    """Record the head revisions in the bind's database, unless it already has a version."""
    from alembic.runtime.migration import MigrationContext

    url = binds.safe_url(engine.url)
    try:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection)
            current = context.get_current_heads()
            if current:
                return Stamped(name, url, tuple(current), already=True)
            context.stamp(script_directory, "heads")
    except sa.exc.DBAPIError as error:
        raise MigrateError(
            f"cannot record the head revision in the bind '{name}' ({url}): {describe(error)}; "
            "the folder was converted, so run 'db upgrade' once the database is reachable"
        ) from error
    return Stamped(name, url, tuple(script_directory.get_heads()))
