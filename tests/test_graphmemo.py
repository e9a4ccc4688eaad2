"""Reading commands answer from the graph memo with the output of the imported revisions.

Every revision file written here says so on stderr when it is imported, so a test sees whether
a command imported it.  Each command runs with no memo (the revision files are imported, the
memo is written) and again with it; stdout and the exit status must be the same, and the second
run must import nothing.  ``PYTHONHASHSEED`` is fixed: Alembic lists the revisions a branch
point leads to from a set, in an order that changes from one process to the next.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.guarantee_helpers import write_revision

MEMO = ("versions", "__pycache__", "flask_migrate_graph.pickle")
MARK = "imported revision "

#: (revision, down_revision, branch_labels, depends_on): two roots, a branch point (a), a
#: merge point (m), branch labels and dependencies.
GRAPH = [
    ("a", None, None, None),
    ("b1", "a", "left", None),
    ("c1", "b1", None, None),
    ("b2", "a", None, None),
    ("c2", "b2", None, "c1"),
    ("m", ("c1", "c2"), None, None),
    ("d", "m", None, None),
    ("x", None, ("other", "extra"), "a"),
]

READING = [
    ("heads", "-v"),
    ("heads", "--resolve-dependencies"),
    ("branches", "-v"),
    ("history",),
    ("history", "-v"),
    ("history", "-r", "b1:m"),
    ("history", "-i"),
    ("current", "-v"),
    ("status",),
    ("show", "c2"),
    ("show", "m"),
    ("upgrade", "--plan", "heads"),
    ("downgrade", "--plan", "a"),
]


def revise(project: Project, revision: str, down: str | tuple[str, ...] | None,
           branch_labels: object = None, depends_on: object = None, note: str = "") -> Path:
    message = (f"revision {revision}{note}\n\nRevision ID: {revision}\nRevises: {down}\n"
               "Create Date: 2024-01-02 03:04:05.000006")
    path = write_revision(project, revision, down, message=message,
                          branch_labels=branch_labels, depends_on=depends_on)
    with open(path, "a", encoding="utf-8") as file:
        file.write(f"\nimport sys\nprint({MARK + revision!r}, file=sys.stderr)\n")
    return path


def make(make_project, app: str) -> Project:
    project = make_project(app, PYTHONHASHSEED="0")
    project.ok("init", *(("--multidb",) if app == "multidb" else ()))
    for revision, down, labels, depends in GRAPH:
        revise(project, revision, down, labels, depends)
    project.ok("upgrade", "c1")
    project.ok("upgrade", "other@head")
    return project


def memo(project: Project) -> Path:
    return project.migrations.joinpath(*MEMO)


def imports(result: object) -> list[str]:
    return [line[len(MARK):] for line in str(getattr(result, "stderr")).splitlines()
            if line.startswith(MARK)]


def comparable(args: tuple[str, ...], stdout: str) -> str:
    """``stdout`` of ``args``; for ``current``, its revisions in a fixed order: Alembic lists a
    database's current revisions from a set of objects, in an order that is not even the same
    in two runs without any memo."""
    if args[0] != "current":
        return stdout
    sections = []
    for section in stdout.split("Current revision(s) for "):
        header, *revisions = section.split("\nRev: ")
        sections.append("\nRev: ".join([header, *sorted(b.rstrip() for b in revisions)]))
    return "\n--\n".join(sections)


def cold_and_warm(project: Project, *args: str) -> None:
    """Run ``args`` without the memo, then with it: the same output, and no import."""
    memo(project).unlink(missing_ok=True)
    cold = project.db(*args)
    assert imports(cold), f"{args}: the revision files were not imported without a memo"
    assert memo(project).exists(), f"{args}: no memo written\n{cold}"
    warm = project.db(*args)
    expected, found = comparable(args, cold.stdout), comparable(args, warm.stdout)
    difference = "\n".join(difflib.unified_diff(
        expected.splitlines(), found.splitlines(), "cold", "warm", lineterm=""))
    assert found == expected, f"{args}:\n{difference}"
    assert warm.returncode == cold.returncode, (args, cold, warm)
    assert imports(warm) == [], f"{args}: the memo did not spare the imports\n{warm}"


@pytest.mark.parametrize("app", ["single", "multidb"])
def test_reading_commands_from_the_memo(make_project, front: str, app: str) -> None:
    project = make(make_project, app)
    for args in READING:
        cold_and_warm(project, *args)
    # Commands that run revisions never use it.
    result = project.ok("upgrade", "heads")
    assert sorted(imports(result)) == sorted(revision for revision, *_ in GRAPH)


def test_any_change_to_the_files_is_seen(make_project, front: str) -> None:
    project = make(make_project, "single")
    expected = project.ok("history", "-v").stdout
    project.ok("history", "-v")  # the memo is written
    assert imports(project.ok("history", "-v")) == []

    # Edited, same size: d's parent becomes x (so m becomes a head, and x is not one).
    path = project.migrations / "versions" / "d_.py"
    text = path.read_text()
    edited = text.replace("down_revision = 'm'", "down_revision = 'x'")
    assert len(edited) == len(text) and edited != text
    path.write_text(edited)
    result = project.ok("heads")
    assert imports(result), "an edited file was not read again"
    assert sorted(line.split()[0] for line in result.stdout.splitlines()) == ["d", "m"]
    assert imports(project.ok("heads")) == []

    # Added.
    revise(project, "e", "d")
    result = project.ok("heads")
    assert imports(result) and "e" in [line.split()[0] for line in result.stdout.splitlines()]
    # Removed.
    (project.migrations / "versions" / "e_.py").unlink()
    result = project.ok("heads")
    assert imports(result) and "e" not in result.stdout.split()

    # And back as it was: the output of the files, not of some memo.
    path.write_text(text)
    assert project.ok("history", "-v").stdout == expected
    assert project.ok("history", "-v").stdout == expected


def test_a_damaged_or_unwritable_memo_means_the_normal_path(make_project, front: str) -> None:
    project = make(make_project, "single")
    expected = project.ok("heads", "-v").stdout
    memo(project).write_bytes(b"not a memo")
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result)
    assert imports(project.ok("heads", "-v")) == []  # written again

    # A file where the memo's folder would be: nothing can be written there.
    import shutil

    shutil.rmtree(memo(project).parent)
    memo(project).parent.write_text("")
    for _ in range(2):
        result = project.ok("heads", "-v")
        assert result.stdout == expected and imports(result)
