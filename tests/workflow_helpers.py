"""Helpers for tests/test_workflow.py: reading revision files and changing a project's files.

Everything here reads or writes plain files of a test project; nothing runs a command.
"""
from __future__ import annotations

import ast
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from tests.conftest import Project, Result


@dataclass(frozen=True)
class Revision:
    """The header of one revision file, read without importing it."""

    path: Path
    revision: str
    down_revision: Any
    branch_labels: Any
    text: str

    @property
    def parents(self) -> set[str]:
        """``down_revision`` as a set (a merge revision has several, the first one none)."""
        down = self.down_revision
        if down is None:
            return set()
        if isinstance(down, str):
            return {down}
        return set(down)


def read_revision(path: Path) -> Revision:
    """Parse the module-level ``revision``/``down_revision``/``branch_labels`` of a revision file."""
    text = path.read_text(encoding="utf-8")
    values: dict[str, Any] = {}
    for node in ast.parse(text).body:
        # Alembic writes either ``revision = 'x'`` or ``revision: str = 'x'``.
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                pass
    assert "revision" in values, f"{path} has no `revision = ...` line:\n{text}"
    return Revision(
        path, values["revision"], values.get("down_revision"), values.get("branch_labels"), text
    )


def revisions(project: Project, directory: str = "migrations") -> dict[str, Revision]:
    """Revision id -> :class:`Revision` for every file in ``<directory>/versions``."""
    found = {}
    for path in project.revision_files(directory):
        info = read_revision(path)
        found[info.revision] = info
    return found


def only_new(before: dict[str, Revision], after: dict[str, Revision]) -> Revision:
    """The one revision in ``after`` that ``before`` did not have."""
    added = [info for rev, info in after.items() if rev not in before]
    assert len(added) == 1, f"expected exactly one new revision file, got {added}"
    return added[0]


def lines_with(text: str, needle: str) -> list[int]:
    """Indexes of the lines of ``text`` that contain ``needle``."""
    return [index for index, line in enumerate(text.splitlines()) if needle in line]


def error_lines(result: Result) -> list[str]:
    """The ``Error: ...`` lines a run wrote to stderr."""
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


#: What a run says when it gave up waiting for a lock, with the tests' lock timeout of 1 s.  The
#: message gives the time the run waited, rounded: on a loaded machine that may be more than the
#: timeout, never less, so any whole number of seconds from 1 on is right.
GAVE_UP_AFTER_1_S = re.compile(r"gave up after waiting [1-9]\d* s\b", re.IGNORECASE)


def assert_clean_failure(result: Result, status: int, *words: str | re.Pattern[str]) -> None:
    """``result`` failed with ``status``, one ``Error:`` line naming ``words`` (a pattern is
    searched for), no traceback."""
    assert result.returncode == status, str(result)
    errors = error_lines(result)
    assert len(errors) == 1, str(result)
    for word in words:
        if isinstance(word, re.Pattern):
            assert word.search(errors[0]), f"{word.pattern!r} missing\n{result}"
        else:
            assert word.lower() in errors[0].lower(), str(result)
    assert "Traceback" not in result.output, str(result)


def add_to_env_py(project: Project, code: str, directory: str = "migrations") -> None:
    """Insert ``code`` in env.py before its first call into the runtime (after the imports)."""
    env_py = project.path / directory / "env.py"
    text = env_py.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    last_import = max(
        index for index, line in enumerate(lines) if line.startswith(("import ", "from "))
    )
    lines.insert(last_import + 1, "\n" + code.strip("\n") + "\n")
    env_py.write_text("".join(lines), encoding="utf-8")


def write_editor(path: Path, marker: str) -> Path:
    """An executable "editor" that appends ``marker`` (and the file's name) to the file it edits."""
    path.write_text(
        "#!/bin/sh\n"
        f'printf "\\n# {marker}\\n" >> "$1"\n',
        encoding="utf-8",
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def add_version_location(project: Project, folder: str, directory: str = "migrations") -> None:
    """Declare ``<directory>/<folder>`` as a version location next to ``versions`` in alembic.ini."""
    ini = project.path / directory / "alembic.ini"
    text = ini.read_text(encoding="utf-8")
    assert "\nversion_locations" not in text, text
    line = f"version_locations = %(here)s/versions %(here)s/{folder}\n"
    # Options belong to the [alembic] section, which alembic.ini starts with.
    head, marker, rest = text.partition("[alembic]\n")
    assert marker, f"no [alembic] section in {ini}:\n{text}"
    ini.write_text(head + marker + line + rest, encoding="utf-8")
    (project.path / directory / folder).mkdir()


def files_under(path: Path) -> Iterable[Path]:
    """Every file below ``path``."""
    for root, _dirs, names in os.walk(path):
        for name in names:
            yield Path(root) / name
