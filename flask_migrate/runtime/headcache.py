"""``db upgrade`` at head without importing every revision file.

Containers run ``db upgrade`` at every start, and nearly always there is nothing to do.  Alembic
still imports every revision module to learn the folder's heads, which costs more than the rest
of the command once a history has a few thousand revisions.  This module remembers the heads of
the folder under a hash of the content of every revision file; when the hash matches and the
database is at exactly those heads, the upgrade has nothing to apply and no module is imported.

The memo is ``<versions>/__pycache__/flask_migrate_heads.json``, next to Python's own byte-code
caches (so already ignored by version control).  Any change to any revision file, a new one or a
removed one changes the hash; a folder the memo cannot be written to simply gets no shortcut.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from typing import TYPE_CHECKING, Iterable, Iterator, Union

from .._alembic import version_locations

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationStep
    from alembic.script import ScriptDirectory

    from .._alembic import StepsFunction

#: The memo's JSON: ``format``, ``fingerprint`` and ``heads`` (a sorted list of revision ids).
_Memo = dict[str, Union[int, str, list[str]]]

MEMO_NAME = "flask_migrate_heads.json"
_FORMAT = 1


def _revision_files(script: ScriptDirectory) -> Iterator[str]:
    for location in version_locations(script):
        if not os.path.isdir(location):
            continue
        if script.recursive_version_locations:
            walk: Iterable[tuple[str, list[str], list[str]]] = os.walk(location)
        else:
            walk = [(location, [], os.listdir(location))]
        for folder, subfolders, names in walk:
            subfolders[:] = sorted(name for name in subfolders if name != "__pycache__")
            for name in sorted(names):
                if name.endswith(".py"):
                    yield os.path.join(folder, name)


def fingerprint(script: ScriptDirectory) -> str | None:
    """A hash of the name and content of every revision file (None when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        for path in _revision_files(script):
            digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
            with open(path, "rb") as file:
                digest.update(hashlib.sha256(file.read()).digest())
    except OSError:
        return None
    return digest.hexdigest()


def _memo_path(script: ScriptDirectory) -> str | None:
    locations = version_locations(script)
    return os.path.join(locations[0], "__pycache__", MEMO_NAME) if locations else None


def _read(path: str) -> _Memo:
    try:
        with open(path, encoding="utf-8") as file:
            memo: object = json.load(file)
    except (OSError, ValueError):
        return {}
    return memo if isinstance(memo, dict) and memo.get("format") == _FORMAT else {}


def _write(path: str, memo: _Memo) -> None:
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(memo, file)
        os.replace(temporary, path)


def upgrade_to_heads(script: ScriptDirectory, steps: StepsFunction) -> StepsFunction:
    """Alembic's step function of ``upgrade heads``, answering "nothing to do" from the memo.

    When the memo does not decide it, ``steps`` runs as usual and the memo is written afterwards.
    """
    # Hashed once per command, before any database is visited.
    known = fingerprint(script)
    path = _memo_path(script)

    def run(heads: tuple[str, ...], context: MigrationContext) -> Iterable[MigrationStep]:
        if known is not None and path is not None:
            memo = _read(path)
            if memo.get("fingerprint") == known and sorted(heads or ()) == memo.get("heads"):
                return []
        result = list(steps(heads, context))
        if known is not None and path is not None:
            _write(path, {
                "format": _FORMAT, "fingerprint": known, "heads": sorted(script.get_heads()),
            })
        return result

    return run
