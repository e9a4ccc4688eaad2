"""Reading commands answer from the graph memo with the output of the imported revisions.

Every revision file written here says so on stderr when it is imported, so a test sees whether
a command imported it.  Each command runs with no memo (the revision files are imported, the
memo is written) and again with it; stdout and the exit status must be the same, and the second
run must import nothing.  ``PYTHONHASHSEED`` is fixed: Alembic lists the revisions a branch
point leads to from a set, in an order that changes from one process to the next.
"""
from __future__ import annotations

import difflib
import marshal
import os
import random
import re
from pathlib import Path

import pytest
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import Revision, RevisionError, RevisionMap
from alembic.util import CommandError, to_tuple

from flask_migrate import _alembic
from flask_migrate.runtime import graphmemo

from tests.conftest import Project
from tests.folders import install
from tests.guarantee_helpers import write_revision

MEMO = ("versions", "__pycache__", "flask_migrate_graph.marshal")
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


def make(make_project, app: str, kind: str = "stock") -> Project:
    """A project with :data:`GRAPH`, its database at c1 and x; ``kind`` is the folder's
    generation (tests/folders.py) when it is not the one ``init`` writes."""
    project = make_project(app, PYTHONHASHSEED="0")
    if kind == "stock":
        project.ok("init", *(("--multidb",) if app == "multidb" else ()))
    else:
        install(kind, project.migrations)
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
    if "-v" not in args:
        return "\n".join(sorted(stdout.splitlines()))
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


def rewrite_memo(project: Project, **changes: object) -> None:
    """Change what the memo says: ``made``, ``identity``, or ``digest_of`` (a file whose
    recorded content hash becomes wrong)."""
    data = graphmemo.read(str(memo(project)))
    assert data, "no memo, or not one written by this version"
    if "digest_of" in changes:
        [name] = [name for name in data["files"] if name.endswith(os.sep + changes["digest_of"])]
        data["files"][name] = (*data["files"][name][:4], "0" * 64)
    for key in ("made", "identity"):
        if key in changes:
            data[key] = changes[key]
    memo(project).write_bytes(graphmemo.encode(data))


def test_a_file_is_trusted_by_its_status_unless_it_changed_near_the_memo(make_project, front):
    """A file with the size, times and inode the memo recorded, changed more than RACY_SECONDS
    before the memo was made, is not read again; one whose status changed, or that changed too
    close to the memo, is hashed again.  Shown with a memo that records a wrong hash: what is
    trusted by its status keeps the shortcut, what is hashed loses it."""
    project = make(make_project, "single")
    expected = project.ok("heads", "-v").stdout  # the memo is written
    versions = project.migrations / "versions"
    newest = max(path.stat().st_ctime_ns for path in versions.glob("*.py"))
    racy = graphmemo.RACY_SECONDS * 1_000_000_000

    # Trusted by its status: the wrong hash is never compared.
    rewrite_memo(project, digest_of="d_.py", made=newest + racy + 1_000_000_000)
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result) == [], str(result)

    # Its ctime changes (the content and the mtime do not): hashed, found different from the
    # memo's hash, read again; the memo written again says the right hash.
    path = versions / "d_.py"
    before = path.stat()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_ctime_ns != before.st_ctime_ns
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result), str(result)
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result) == [], str(result)

    # The same status, but changed within RACY_SECONDS of the memo: hashed at every read.
    rewrite_memo(project, digest_of="d_.py", made=path.stat().st_ctime_ns + racy // 2)
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result), str(result)

    # A memo made by another Alembic: not used.
    project.ok("heads", "-v")
    identity = graphmemo.read(str(memo(project)))["identity"]
    rewrite_memo(project, identity=[*identity[:2], "0.0.1", *identity[3:]])
    result = project.ok("heads", "-v")
    assert result.stdout == expected and imports(result), str(result)
    assert imports(project.ok("heads", "-v")) == []


# -- current ------------------------------------------------------------------------------------

#: (what to upgrade to from the state :func:`make` leaves, at c1 and x; the revisions
#: ``current`` lists).  c2 depends on c1 without descending from it: Alembic lists c1 beside
#: c2, as the last revision of its branch the database has.
CURRENT_STATES: list[tuple[tuple[str, ...], list[str]]] = [
    ((), ["c1", "x"]),
    (("c2",), ["c1", "c2", "x"]),
    (("heads",), ["d", "x"]),
]


def listed(stdout: str) -> list[list[str]]:
    """The revisions of each "Current revision(s) for ..." section of ``current -v``, sorted."""
    return [
        sorted(line.split()[1] for line in section.splitlines() if line.startswith("Rev: "))
        for section in stdout.split("Current revision(s) for ")[1:]
    ]


@pytest.mark.parametrize("app, kind", [
    ("single", "stock"), ("multidb", "stock"), ("single", "fm1"), ("multidb", "fm4-multidb"),
])
def test_current_from_the_memo(make_project, front: str, app: str, kind: str) -> None:
    """``current`` on branched, merged and dependent histories, with folders of this
    Flask-Migrate and of old ones (their env.py, not ours): the same output with the memo as
    without, and the revisions Alembic lists."""
    project = make(make_project, app, kind)
    databases = 3 if app == "multidb" else 1
    for upgrade, expected in CURRENT_STATES:
        if upgrade:
            project.ok("upgrade", *upgrade)
        for args in (("current",), ("current", "-v")):
            cold_and_warm(project, *args)
        result = project.ok("current", "-v")
        assert listed(result.stdout) == [expected] * databases, str(result)
        assert imports(result) == []


def test_current_at_one_revision_of_a_history_without_dependencies(make_project, front):
    """With no ``depends_on`` anywhere, the memo says so, and ``current`` at one revision lists
    it without walking the history below it: the same output as the imported files give."""
    project = make_project("single", PYTHONHASHSEED="0")
    project.ok("init")
    for revision, down in (("a", None), ("b", "a"), ("c", "b")):
        revise(project, revision, down)
    project.ok("upgrade", "b")
    for args in (("current",), ("current", "-v")):
        cold_and_warm(project, *args)
    assert graphmemo.read(str(memo(project)))["graph"]["dependencies"] is False
    result = project.ok("current", "-v")
    assert listed(result.stdout) == [["b"]] and imports(result) == [], str(result)


def _random_history(rng: random.Random, dependencies: bool = True) -> list[Revision]:
    """Up to 40 revisions: several roots, branch points, merges, dependencies (unless not)."""
    revisions: list[Revision] = []
    for number in range(rng.randint(1, 40)):
        earlier = [revision.revision for revision in revisions]
        parents = rng.sample(earlier, min(len(earlier), rng.choice([0, 1, 1, 1, 1, 2, 3])))
        others = [name for name in earlier if name not in parents]
        counts = [0, 0, 0, 1, 2] if dependencies else [0]
        depends = rng.sample(others, min(len(others), rng.choice(counts)))
        revisions.append(Revision(
            f"r{number}",
            parents[0] if len(parents) == 1 else (tuple(parents) or None),
            dependencies=tuple(depends) or None,
        ))
    return revisions


def test_current_lists_what_alembic_lists(tmp_path: Path) -> None:
    """What ``current`` prints with :func:`flask_migrate._alembic.serve_all_current` is what
    Alembic's own ``get_all_current`` gives: the same revisions, in the same order (the
    order of a set, the same for the same objects), and the same error for an unknown one."""
    rng = random.Random(13)
    for number in range(400):
        # A quarter without any depends_on: the case where one revision is its own answer.
        dependencies = number % 4 != 0
        revisions = _random_history(rng, dependencies)
        script = ScriptDirectory(str(tmp_path))
        script.revision_map = RevisionMap(lambda: iter(revisions))
        names = [revision.revision for revision in revisions]
        cases = [tuple(rng.sample(names, min(len(names), rng.randint(1, 3))))
                 for _ in range(5)]
        cases += [(), ("nonesuch",), (names[0], "nonesuch")]

        def answers() -> list[object]:
            found: list[object] = []
            for ids in cases:
                try:
                    found.append([revision.revision for revision in script.get_all_current(ids)])
                except CommandError as error:
                    found.append(str(error))
            return found

        alembic_own = answers()
        _alembic.serve_all_current(script, dependencies)
        assert answers() == alembic_own, [revision.__dict__ for revision in revisions]


#: How ``alembic.command.history`` formats each revision.
HISTORY_LINE = {"verbose": False, "include_branches": True, "include_doc": True,
                "include_parents": True}


def _history(script: ScriptDirectory, current: str | None = None) -> list[str]:
    """What ``history`` (``-i`` at ``current``) prints for the revisions of ``script``, with
    the branch labels of each revision in a fixed order: Alembic adds the labels of a branch
    to its revisions while walking sets of revisions, which are ordered by the objects'
    addresses, so a revision with several lists them in an order that changes from one process
    (or one revision map) to the next."""
    lines = []
    for revision in script.walk_revisions():
        revision._db_current_indicator = revision.revision == current
        line = revision.cmd_format(**HISTORY_LINE)
        lines.append(re.sub(r"\((label[^()]*)\)",
                            lambda labels: f"({', '.join(sorted(labels[1].split(', ')))})", line))
    return lines


def test_the_walk_and_the_lines_of_history_are_alembics(tmp_path: Path) -> None:
    """``history`` and ``branches`` from the memo walk the revisions in the order Alembic's
    own walk gives and print Alembic's own lines, on random histories with branch points,
    merges, dependencies and branch labels, without sorting the graph again."""
    rng = random.Random(29)
    for number in range(300):
        revisions = _random_history(rng, dependencies=number % 4 != 0)
        entries: list[graphmemo.Entry] = [{
            "revision": revision.revision,
            "down_revision": (list(revision.down_revision)
                              if isinstance(revision.down_revision, tuple)
                              else revision.down_revision),
            "branch_labels": [f"label{revision.revision}"] if rng.random() < 0.2 else [],
            "depends_on": list(to_tuple(revision.dependencies, default=())),
            "path": str(tmp_path / f"{revision.revision}.py"),
            "longdoc": f"message {revision.revision}\n\nRevision ID: {revision.revision}",
        } for revision in revisions]
        current = rng.choice(revisions).revision

        alembic_own = ScriptDirectory(str(tmp_path))
        alembic_own.revision_map = RevisionMap(
            lambda: iter([graphmemo.MemoScript(entry) for entry in entries]))
        expected = _history(alembic_own), _history(alembic_own, current)

        from_memo = ScriptDirectory(str(tmp_path))
        frozen = marshal.loads(marshal.dumps(graphmemo.memo_graph(entries)))  # as read
        revision_map = graphmemo.revision_map_of(frozen)
        assert revision_map is not None
        revision_map._topological_sort = None  # type: ignore[assignment] # not needed again
        from_memo.revision_map = revision_map
        assert (_history(from_memo), _history(from_memo, current)) == expected, entries
        # The line of the current revision is Alembic's, with its "(current)".
        assert any(line.endswith(f"-> {current} (current)") or " (current)" in line
                   for line in expected[1])


def test_a_line_asked_for_otherwise_is_formatted_by_alembic(tmp_path: Path) -> None:
    entries: list[graphmemo.Entry] = [
        {"revision": "a", "down_revision": None, "branch_labels": [], "depends_on": [],
         "path": str(tmp_path / "a.py"), "longdoc": "first"},
        {"revision": "b", "down_revision": "a", "branch_labels": ["main"], "depends_on": [],
         "path": str(tmp_path / "b.py"), "longdoc": "second\n\nmore"},
    ]
    revision_map = graphmemo.revision_map_of(graphmemo.memo_graph(entries))
    assert revision_map is not None
    b = revision_map.get_revision("b")
    assert b.cmd_format(**HISTORY_LINE) == "a -> b (main) (head), second"
    assert b.cmd_format(False) == "b (head)"  # how heads asks
    assert b.cmd_format(verbose=False, include_branches=True) == "b (main) (head)"
    assert b.cmd_format(True) == Script.cmd_format(b, True)  # the verbose entry


def test_one_step_down_is_what_alembic_plans(tmp_path: Path) -> None:
    """``downgrade --plan`` (``-1``) from a database at any one revision of random histories
    lists what Alembic's own walk lists, or fails where it fails."""
    rng = random.Random(31)
    shortcuts = 0
    for number in range(300):
        revisions = _random_history(rng, dependencies=number % 4 != 0)
        script = ScriptDirectory(str(tmp_path))
        script.revision_map = RevisionMap(lambda: iter(revisions))
        for revision in revisions:
            heads = (revision.revision,)
            try:
                expected: object = [alembic_own.revision for alembic_own in (
                    script.iterate_revisions(heads, "-1", select_for_downgrade=True))]
            except (CommandError, RevisionError):  # downgrade_steps words it as Alembic does
                expected = "an error"
            try:
                found: object = [step.revision.revision for step in (
                    _alembic.downgrade_steps(script, "-1", heads))]
            except CommandError:
                found = "an error"
            assert found == expected, (heads, [r.__dict__ for r in revisions])
            shortcuts += isinstance(revision.down_revision, str)
    assert shortcuts > 100  # the case the shortcut answers was met
