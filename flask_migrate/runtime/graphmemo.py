"""The revision graph of a folder, remembered, so that reading commands import no revision file.

``heads``, ``branches``, ``history``, ``show``, ``current``, ``status`` and the ``--plan`` of
``upgrade``/``downgrade`` only read the graph: ids, parents, branch labels, dependencies, the
docstring and the path of every revision.  Alembic imports every revision module to learn them,
which, with a few thousand revisions, costs more than the rest of the command.  This module
keeps them in ``<versions>/__pycache__/flask_migrate_graph.pickle`` (beside Python's own
byte-code caches, so already ignored by version control, and trusted as they are) and gives
those commands' ``ScriptDirectory`` a revision map of stand-ins (:class:`MemoScript`) instead of
imported modules.  Whatever reads a stand-in's ``module`` gets the real module, imported then.
The map is kept as Alembic built it: building one costs time quadratic in the number of
revisions (a third of a second at 5000), more than everything else the memo saves.  Only
:class:`MemoScript` and Python's own containers are unpickled from it.

When the memo is valid, the output is the one the imported modules give, byte for byte: the
stand-ins carry exactly what Alembic's ``Script`` reads from a module, in the order Alembic
loads the files.  It is valid only for the same Alembic version, the same version folders
(real paths), the same set of ``.py`` files in them and, for each file, the same content.  To
learn that cheaply, each file's size, mtime, ctime and inode are compared with the ones
recorded beside its content hash (as git's index does); a file whose status differs, or that
was changed within :data:`RACY_SECONDS` of the memo being made (when a same-size edit could
keep the same timestamps), is hashed again.  Anything else -- a file added, removed or edited,
an unreadable memo, ``sourceless`` folders -- means the normal path, after which the memo is
written again (atomically; a folder that cannot be written simply gets no shortcut).

``current`` also lists the database's revisions in linear time
(:func:`flask_migrate._alembic.serve_all_current`): Alembic's own listing takes time quadratic
in the number of revisions, which at 5000 costs more than importing them all.

Upgrades and downgrades never use it: they run the revisions, so they import them.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import os
import pickle
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Callable, Iterator, TypedDict, cast

import alembic
from alembic import util as alembic_util
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import Revision, RevisionMap

from .. import _alembic
from ..config import ATTR_COMMAND

if TYPE_CHECKING:
    from alembic.config import Config

MEMO_NAME = "flask_migrate_graph.pickle"
#: Change when what the memo holds, or how it is read, changes.
FORMAT = 1
#: The commands that only read the graph, as ``ATTR_COMMAND`` names them.
READING_COMMANDS = frozenset({"heads", "branches", "history", "show", "current", "status", "plan"})
#: A file changed less than this long before the memo was made is hashed at every read.
RACY_SECONDS = 2
#: Where a command keeps what it found (the memo is read once per command).
_ATTR_STATE = "flask_migrate.graphmemo"

#: (size, mtime_ns, ctime_ns, inode)
Status = tuple[int, int, int, int]


class Entry(TypedDict):
    """One revision in the memo: what ``Script.__init__`` reads from its module (see
    :func:`_entry`)."""

    revision: str
    down_revision: str | list[str] | None
    branch_labels: list[str]
    depends_on: list[str]
    path: str
    longdoc: str


class Memo(TypedDict, total=False):
    """The memo file (all of it, or nothing when it could not be read): the graph, and what
    tells whether it still describes the folder."""

    format: int
    identity: list[object]
    #: When the memo was made (``time.time_ns()``).
    made: int
    #: Each ``.py`` file's path -> its :data:`Status`, then its content hash.
    files: dict[str, list[int | str]]
    #: The revision map's state (:func:`flask_migrate._alembic.revision_map_state`).
    graph: dict[str, object]


class MemoScript(Script):
    """An Alembic ``Script`` made from the memo: the revision's graph and docstring, and its
    module imported only if something asks for it."""

    def __init__(self, entry: Entry) -> None:
        down = entry["down_revision"]
        # What Script.__init__ gives Revision.__init__, from the values the module held.
        Revision.__init__(
            self,
            entry["revision"],
            tuple(down) if isinstance(down, list) else down,
            branch_labels=tuple(entry["branch_labels"]),
            dependencies=tuple(entry["depends_on"]),
        )
        self.path = entry["path"]
        self._memo_longdoc: str = entry["longdoc"]
        self._module: ModuleType | None = None

    @property
    def module(self) -> ModuleType:
        if self._module is None:
            directory, filename = os.path.split(self.path)
            self._module = alembic_util.load_python_file(directory, filename)
        return self._module

    @module.setter
    def module(self, module: ModuleType) -> None:
        self._module = module

    @property
    def module_imported(self) -> bool:
        """Whether the module was imported (see :func:`.revisions.run_per_database`)."""
        return self._module is not None

    @property
    def longdoc(self) -> str:
        return self._memo_longdoc


def install() -> None:
    """Serve the reading commands' ``ScriptDirectory`` from the memo (once per process)."""
    _alembic.install_script_directory_hook(_hook)


class _State:
    """What one command knows: the memo's path, the files' status, the memo's map state."""

    def __init__(
        self, path: str, files: dict[str, os.stat_result], graph: dict[str, object] | None
    ) -> None:
        self.path = path
        self.files = files
        self.graph = graph
        self.served = False
        #: The memo to write once the command has succeeded (:func:`flush`): a command that
        #: fails changes no file.
        self.pending: Callable[[], None] | None = None


def _hook(config: Config, script: ScriptDirectory) -> None:
    attributes = getattr(config, "attributes", None)
    if not isinstance(attributes, dict) or attributes.get(ATTR_COMMAND) not in READING_COMMANDS:
        return
    if attributes[ATTR_COMMAND] == "current":
        # With or without the memo: Alembic's own listing costs more than importing the files.
        _alembic.serve_all_current(script)
    if script.sourceless:
        return
    state = attributes.get(_ATTR_STATE)
    if state is None:
        state = _look(script)
        if state is None:
            return
        attributes[_ATTR_STATE] = state
    if state.graph is not None:
        # A map of its own for every ScriptDirectory, as Alembic's are (commands mark them).
        graph = state.graph if not state.served else pickle.loads(pickle.dumps(state.graph))
        state.served = True
        script.revision_map = _alembic.revision_map_from_state(graph)
    else:
        script.revision_map = RevisionMap(lambda: _loading(script, state))


def _locations(script: ScriptDirectory) -> list[str]:
    return [os.path.realpath(location) for location in _alembic.version_locations(script)]


def _memo_path(script: ScriptDirectory) -> str | None:
    locations = _alembic.version_locations(script)
    return os.path.join(locations[0], "__pycache__", MEMO_NAME) if locations else None


def _files(script: ScriptDirectory) -> Iterator[tuple[str, os.stat_result]]:
    """Every ``.py`` file Alembic could load as a revision (a superset), with its status."""
    for location in _locations(script):
        if not os.path.isdir(location):
            continue
        folders = [location]
        while folders:
            folder = folders.pop()
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.endswith(".py"):
                        yield entry.path, entry.stat()  # follows a symbolic link
                    elif (script.recursive_version_locations and entry.name != "__pycache__"
                          and entry.is_dir()):
                        folders.append(entry.path)


def _status(stat: os.stat_result) -> Status:
    return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _content_hash(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _identity(script: ScriptDirectory) -> list[object]:
    return [FORMAT, sys.version_info[:2], alembic.__version__, _locations(script),
            script.recursive_version_locations]


def _look(script: ScriptDirectory) -> _State | None:
    """Read the memo; its revisions when it still describes the folder, else None in them."""
    path = _memo_path(script)
    if path is None:
        return None
    memo = _read(path)
    try:
        current = {name: stat for name, stat in _files(script)}
    except OSError:
        return None
    if memo.get("identity") != _identity(script) or set(memo.get("files", ())) != set(current):
        return _State(path, current, None)
    racy_before = memo["made"] - RACY_SECONDS * 1_000_000_000
    for name, stat in current.items():
        recorded = memo["files"][name]
        # The same status, so the same ctime as recorded.
        if _status(stat) == tuple(recorded[:4]) and stat.st_ctime_ns < racy_before:
            continue
        try:
            if _content_hash(name) != recorded[4]:
                return _State(path, current, None)
        except OSError:
            return None
    return _State(path, current, memo["graph"])


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type[MemoScript]:
        if (module, name) == (MemoScript.__module__, MemoScript.__name__):
            return MemoScript
        raise pickle.UnpicklingError(f"{module}.{name} is not part of a graph memo")


def _read(path: str) -> Memo:
    try:
        with open(path, "rb") as file:
            data = file.read()
        # Thousands of objects at once: the collector would walk them all, several times.
        enabled = gc.isenabled()
        gc.disable()
        try:
            memo = _Unpickler(io.BytesIO(data)).load()
        finally:
            if enabled:
                gc.enable()
    except Exception:  # unreadable, truncated, or written by something else: no shortcut
        return {}
    if not isinstance(memo, dict) or memo.get("format") != FORMAT:
        return {}
    return cast(Memo, memo)  # as _write wrote it, FORMAT says


class _Unmemoable(Exception):
    """A revision module holds something the memo cannot give back exactly."""


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _Unmemoable
    return value


def _texts(value: object) -> list[str]:
    return [_text(item) for item in alembic_util.to_tuple(value, default=())]


def _entry(script: Script) -> Entry:
    """What ``Script.__init__`` reads from the module, and the docstring it would print."""
    module = script.module
    down = module.down_revision
    return {
        "revision": _text(script.revision),
        "down_revision": down if down is None else (
            _text(down) if isinstance(down, str) else _texts(down)
        ),
        "branch_labels": _texts(getattr(module, "branch_labels", None)),
        "depends_on": _texts(getattr(module, "depends_on", None)),
        "path": _text(script.path),
        "longdoc": _text(script.longdoc),
    }


def _loading(script: ScriptDirectory, state: _State) -> Iterator[Script]:
    """Alembic's own loading of the revision files, writing the memo once all are loaded."""
    made = time.time_ns()
    try:
        # Before the import: a file edited in between fails the check of the next read.
        digests = {name: _content_hash(name) for name in state.files}
    except OSError:
        digests = None
    loaded = []
    for revision in _alembic.load_revision_files(script):
        loaded.append(revision)
        yield revision
    if digests is not None:
        with contextlib.suppress(_Unmemoable):
            entries = [_entry(revision) for revision in loaded]
            state.pending = lambda: _write(script, state, made, digests, entries)


def flush(config: Config) -> None:
    """Write the memo a command that succeeded has made, if any."""
    attributes = getattr(config, "attributes", None)
    state = attributes.get(_ATTR_STATE) if isinstance(attributes, dict) else None
    if state is not None and state.pending is not None:
        pending, state.pending = state.pending, None
        with contextlib.suppress(OSError, _Unmemoable):
            pending()


def _write(
    script: ScriptDirectory, state: _State, made: int, digests: dict[str, str],
    entries: list[Entry],
) -> None:
    now = dict(_files(script))
    if set(now) != set(state.files) or any(
        _status(now[name]) != _status(stat) for name, stat in state.files.items()
    ):
        return  # changed since the command began: what was loaded may not be what was hashed
    stand_ins = [MemoScript(entry) for entry in entries]
    graph = _alembic.revision_map_state(RevisionMap(lambda: iter(stand_ins)))
    memo: Memo = {
        "format": FORMAT, "identity": _identity(script), "made": made,
        "files": {name: [*_status(stat), digests[name]] for name, stat in state.files.items()},
        "graph": graph,
    }
    os.makedirs(os.path.dirname(state.path), exist_ok=True)
    temporary = f"{state.path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            pickle.dump(memo, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, state.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
