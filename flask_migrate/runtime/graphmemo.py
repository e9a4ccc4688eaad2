"""The revision graph of a folder, remembered, so that reading commands import no revision file.

``heads``, ``branches``, ``history``, ``show``, ``current``, ``status`` and the ``--plan`` of
``upgrade``/``downgrade`` only read the graph: ids, parents, branch labels, dependencies, the
docstring and the path of every revision.  Alembic imports every revision module to learn them,
which, with a few thousand revisions, costs more than the rest of the command.  This module
keeps them in ``<versions>/__pycache__/flask_migrate_graph.marshal`` (beside Python's own
byte-code caches, so already ignored by version control, and trusted as they are) and gives
those commands' ``ScriptDirectory`` a revision map of stand-ins (:class:`MemoScript`) instead of
imported modules.  Whatever reads a stand-in's ``module`` gets the real module, imported then.
The map is kept as Alembic built it: building one costs time quadratic in the number of
revisions (a third of a second at 5000), more than everything else the memo saves.  It is
written with :mod:`marshal` (the format of those byte-code caches), which holds only Python's
own plain values: each stand-in's attributes marshalled on their own, and the map as its keys
and the positions of their stand-ins (a revision named by several keys is one object).  A
stand-in is made when Alembic first looks it up (:class:`_LazyMap`): ``status`` or
``current`` at the head of 5000 revisions makes a handful, ``history`` all of them.  The
memo also keeps the order in which Alembic walks the whole history (``history``,
``branches``), which it would otherwise sort out of the graph again at every command.

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
import marshal
import os
import sys
import time
import zlib
from collections.abc import MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypedDict

import alembic
from alembic import util as alembic_util
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import Revision, RevisionMap

from .. import _alembic
from ..config import ATTR_COMMAND

if TYPE_CHECKING:
    from alembic.config import Config

MEMO_NAME = "flask_migrate_graph.marshal"
#: What an earlier version wrote (with pickle): removed when the memo is written.
_OLD_MEMO_NAME = "flask_migrate_graph.pickle"
#: Change when what the memo holds, or how it is read, changes.
FORMAT = 4
#: The commands that only read the graph, as ``ATTR_COMMAND`` names them.
READING_COMMANDS = frozenset({"heads", "branches", "history", "show", "current", "status", "plan"})
#: A file changed less than this long before the memo was made is hashed at every read.
RACY_SECONDS = 2
#: Where a command keeps what it found (the memo is read once per command).
_ATTR_STATE = "flask_migrate.graphmemo"

#: (size, mtime_ns, ctime_ns, inode)
Status = tuple[int, int, int, int]


class Entry(TypedDict):
    """One revision as the memo is made from it: what ``Script.__init__`` reads from its
    module (see :func:`_entry`)."""

    revision: str
    down_revision: str | list[str] | None
    branch_labels: list[str]
    depends_on: list[str]
    path: str
    longdoc: str


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

    def remember_history_line(self) -> None:
        """Keep the line ``history`` prints for this revision (once the map is built)."""
        try:
            line: str | None = Script.cmd_format(self, **_HISTORY_LINE)
        except Exception:  # whatever it is, it is Alembic's to say when history asks
            line = None
        self._memo_history_line = line

    def cmd_format(self, *args: Any, **kwargs: Any) -> str:
        # Alembic's own formatting costs more per revision than the rest of ``history``.
        line: str | None = self.__dict__.get("_memo_history_line")
        if (line is not None and not args and kwargs == _HISTORY_LINE
                and not self._db_current_indicator):
            return line
        return Script.cmd_format(self, *args, **kwargs)


#: How Alembic's ``history`` asks each revision for its line (``alembic.command.history``):
#: the one call whose answer the memo keeps.  ``history -i`` marks the database's revisions
#: ``(current)``; those lines are formatted again.
_HISTORY_LINE: dict[str, Any] = {
    "verbose": False, "include_branches": True, "include_doc": True, "include_parents": True,
}


def install() -> None:
    """Serve the reading commands' ``ScriptDirectory`` from the memo (once per process)."""
    _alembic.install_script_directory_hook(_hook)


class _State:
    """What one command knows: the memo's path, the files' status, the memo's map state."""

    def __init__(
        self, path: str, files: dict[str, os.stat_result], frozen: dict[str, Any] | None
    ) -> None:
        self.path = path
        self.files = files
        #: The memo's graph as read (:func:`_freeze`), or None when the memo is not valid.
        self.frozen = frozen
        #: The memo to write once the command has succeeded (:func:`flush`): a command that
        #: fails changes no file.
        self.pending: Callable[[], None] | None = None


def _hook(config: Config, script: ScriptDirectory) -> None:
    attributes = getattr(config, "attributes", None)
    if not isinstance(attributes, dict) or attributes.get(ATTR_COMMAND) not in READING_COMMANDS:
        return
    state = attributes.get(_ATTR_STATE)
    if state is None and not script.sourceless:
        state = _look(script)
        attributes[_ATTR_STATE] = state
    frozen = state.frozen if state is not None else None
    revision_map = revision_map_of(frozen) if frozen is not None else None
    if revision_map is not None:
        # A map of its own for every ScriptDirectory, as Alembic's are (commands mark them).
        script.revision_map = revision_map
    elif state is not None:
        script.revision_map = RevisionMap(lambda: _loading(script, state))
    if attributes[ATTR_COMMAND] == "current":
        # With or without the memo: Alembic's own listing costs more than importing the files.
        _alembic.serve_all_current(
            script,
            dependencies=revision_map is None or bool(frozen and frozen["dependencies"]),
        )


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
    memo = read(path)
    try:
        try:
            valid = _describes(script, memo) and _thaw(memo["graph"]) is not None
        except (TypeError, ValueError):  # values of other types than we write
            valid = False
        if valid:
            return _State(path, {}, memo["graph"])
        current = {name: stat for name, stat in _files(script)}
    except OSError:
        return None
    return _State(path, current, None)


def _describes(script: ScriptDirectory, memo: dict[str, Any]) -> bool:
    """Whether the memo was made from the folder's files as they are.

    In one pass, comparing each file as the folder is read: the common case is that nothing
    changed, and this is what a reading command costs beyond the command itself.
    """
    if not memo or memo.get("identity") != _identity(script):
        return False
    recorded = memo["files"]
    racy_before = memo["made"] - RACY_SECONDS * 1_000_000_000
    seen = 0
    for name, stat in _files(script):
        entry = recorded.get(name)
        if not isinstance(entry, tuple) or len(entry) != 5:
            return False  # added (or not a memo we wrote)
        seen += 1
        size, mtime, ctime, inode, digest = entry
        if (stat.st_size == size and stat.st_mtime_ns == mtime and stat.st_ctime_ns == ctime
                and stat.st_ino == inode and ctime < racy_before):
            continue
        if _content_hash(name) != digest:
            return False  # edited
    return seen == len(recorded)  # else some were removed


def read(path: str) -> dict[str, Any]:
    """What the memo holds; an empty dict when it is not a memo we wrote, whole."""
    try:
        with open(path, "rb") as file:
            data = file.read()
        body = data[len(_MAGIC) + 4:]
        if data[:len(_MAGIC)] != _MAGIC or data[len(_MAGIC):len(_MAGIC) + 4] != _crc(body):
            return {}
        # Thousands of objects at once: the collector would walk them all, several times.
        enabled = gc.isenabled()
        gc.disable()
        try:
            memo = marshal.loads(body)
        finally:
            if enabled:
                gc.enable()
    except Exception:  # unreadable, or written by something else: no shortcut
        return {}
    if not (isinstance(memo, dict) and memo.get("format") == FORMAT
            and isinstance(memo.get("files"), dict) and isinstance(memo.get("made"), int)):
        return {}
    return memo


#: The first bytes of a memo file, then the CRC-32 of the rest: a memo damaged on disk is
#: seen before anything in it is read, even what :class:`_LazyMap` reads only when asked.
_MAGIC = b"flask-migrate graph memo\n"


def _crc(body: bytes) -> bytes:
    return zlib.crc32(body).to_bytes(4, "big")


def encode(memo: dict[str, Any]) -> bytes:
    """The bytes of a memo file (what :func:`read` reads).

    :raises _Unmemoable: when it holds a value of a type marshal does not write.
    """
    try:
        body = marshal.dumps(memo)
    except ValueError:
        raise _Unmemoable from None
    return _MAGIC + _crc(body) + body


#: The marker of a revision map (a dict from the keys Alembic looks revisions up by to the
#: revisions) in the marshalled graph: ``(_MAP, keys, positions in the list of stand-ins)``.
_MAP = "flask_migrate.graphmemo.map"


def _freeze(graph: dict[str, Any]) -> dict[str, Any]:
    """The graph (:func:`.revision_map_state`) as plain values :mod:`marshal` can write: each
    stand-in's attribute values, marshalled on their own (:class:`_LazyMap` reads them when
    asked) with the position of their names in a list of name tuples (all stand-ins have the
    same, but nothing relies on it), each map as its keys and the positions of their
    stand-ins, and whether any revision has ``depends_on`` (see :func:`.serve_all_current`).

    :raises _Unmemoable: when a map holds other objects than stand-ins, or a stand-in values
        marshal cannot write.
    """
    scripts: list[bytes] = []
    names: dict[tuple[str, ...], int] = {}
    positions: dict[int, int] = {}

    def position(value: Any) -> int | None:
        if value is None:
            return None
        if not isinstance(value, MemoScript):
            raise _Unmemoable
        if id(value) not in positions:
            positions[id(value)] = len(scripts)
            attributes = vars(value)
            these = names.setdefault(tuple(attributes), len(names))
            try:
                scripts.append(marshal.dumps((*attributes.values(), these)))
            except ValueError:  # an attribute of a type marshal does not write
                raise _Unmemoable from None
        return positions[id(value)]

    frozen: dict[str, Any] = {}
    dependencies = False
    for name, value in graph.items():
        if isinstance(value, dict):
            keys = list(value)
            frozen[name] = (_MAP, keys, [position(value[key]) for key in keys])
            dependencies = dependencies or any(
                revision.dependencies for revision in value.values() if revision is not None
            )
        else:
            frozen[name] = value
    return {"scripts": scripts, "names": list(names), "state": frozen,
            "dependencies": dependencies}


def _thaw(frozen: Any) -> dict[str, Any] | None:
    """A graph with new stand-ins from what :func:`_freeze` gave; None if it is not that."""
    if not (isinstance(frozen, dict) and isinstance(frozen.get("scripts"), list)
            and isinstance(frozen.get("names"), list)
            and all(isinstance(names, tuple) for names in frozen["names"])
            and isinstance(frozen.get("state"), dict)
            and isinstance(frozen.get("dependencies"), bool)
            and "walk" in frozen
            and (frozen["walk"] is None or isinstance(frozen["walk"], list))):
        return None
    rows = frozen["scripts"]
    objects: list[MemoScript | None] = [None] * len(rows)
    graph: dict[str, Any] = {}
    for name, value in frozen["state"].items():
        if isinstance(value, tuple) and len(value) == 3 and value[0] == _MAP:
            _, keys, where = value
            if not (isinstance(keys, list) and isinstance(where, list)
                    and len(keys) == len(where)
                    and all(at is None or 0 <= at < len(rows) for at in where)):
                return None
            graph[name] = _LazyMap(dict(zip(keys, where)), rows, frozen["names"], objects)
        else:
            graph[name] = value
    return graph


class _LazyMap(MutableMapping[Any, Any]):
    """A revision map's ``_revision_map``, whose stand-ins are made when first looked up.

    Alembic only indexes, iterates and tests membership on it, in the order of its keys; a
    command at the head of a long history looks up a handful of the revisions, not all.  A
    revision named by several keys (its id, its branch labels) is one object, as in Alembic's.
    """

    def __init__(
        self, positions: dict[Any, int | None], rows: list[bytes],
        names: list[tuple[str, ...]], objects: list[MemoScript | None],
    ) -> None:
        self._positions = positions
        self._rows = rows
        self._names = names
        self._objects = objects

    def __getitem__(self, key: Any) -> Any:
        at = self._positions[key]
        if at is None:
            return None
        made = self._objects[at]
        if made is None:
            values = marshal.loads(self._rows[at])
            made = object.__new__(MemoScript)
            # The values, then the position of their names (zip stops at the last name).
            made.__dict__ = dict(zip(self._names[values[-1]], values))
            self._objects[at] = made
        return made

    def __setitem__(self, key: Any, value: Any) -> None:  # no reading command writes
        if value is None:
            self._positions[key] = None
        else:
            self._positions[key] = len(self._objects)
            self._objects.append(value)

    def __delitem__(self, key: Any) -> None:
        del self._positions[key]

    def __contains__(self, key: object) -> bool:
        return key in self._positions

    def __iter__(self) -> Iterator[Any]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


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


def memo_graph(entries: list[Entry]) -> dict[str, Any]:
    """What the memo keeps of the revisions ``entries`` (in Alembic's loading order): their
    revision map as :func:`_freeze` gives it, the order of the whole history's walk, and each
    revision's ``history`` line.

    :raises _Unmemoable: when a revision holds a value the memo cannot give back exactly.
    """
    stand_ins = [MemoScript(entry) for entry in entries]
    revision_map = RevisionMap(lambda: iter(stand_ins))
    graph = _alembic.revision_map_state(revision_map)
    for stand_in in stand_ins:  # once the map is built: the line says which are heads
        stand_in.remember_history_line()
    frozen = _freeze(graph)  # before the walk: nothing it might leave on the map is kept
    return {**frozen, "walk": _walk(revision_map)}


def revision_map_of(frozen: Any) -> RevisionMap | None:
    """The revision map :func:`memo_graph` describes, ready to be walked; None when
    ``frozen`` is not what it gives."""
    graph = _thaw(frozen)
    if graph is None:
        return None
    revision_map = _alembic.revision_map_from_state(graph)
    if frozen["walk"] is not None:
        _alembic.serve_full_walk(revision_map, frozen["walk"])
    return revision_map


def _walk(revision_map: RevisionMap) -> list[str] | None:
    """The order of the whole history's walk (see :func:`.serve_full_walk`); None when Alembic
    cannot walk it (the command that walks it then fails as it would without the memo)."""
    try:
        return _alembic.full_walk(revision_map)
    except Exception:
        return None


def _write(
    script: ScriptDirectory, state: _State, made: int, digests: dict[str, str],
    entries: list[Entry],
) -> None:
    now = dict(_files(script))
    if set(now) != set(state.files) or any(
        _status(now[name]) != _status(stat) for name, stat in state.files.items()
    ):
        return  # changed since the command began: what was loaded may not be what was hashed
    memo = {
        "format": FORMAT, "identity": _identity(script), "made": made,
        "files": {name: (*_status(stat), digests[name]) for name, stat in state.files.items()},
        "graph": memo_graph(entries),
    }
    data = encode(memo)
    os.makedirs(os.path.dirname(state.path), exist_ok=True)
    temporary = f"{state.path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, state.path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    with contextlib.suppress(OSError):
        os.remove(os.path.join(os.path.dirname(state.path), _OLD_MEMO_NAME))
