"""``db upgrade`` at head answers from the heads memo without importing the revision files.

Each revision file written here notes its own import in a log file (``IMPORT_LOG``), so a test
can see whether a command imported it.
"""
from __future__ import annotations

import json

from tests.conftest import Project, versions

MEMO = ("versions", "__pycache__", "flask_migrate_heads.json")

REVISION = '''"""{message}"""
import os

from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

with open(os.environ["IMPORT_LOG"], "a") as _log:
    _log.write(revision + "\\n")


def upgrade():
    op.create_table({table!r}, sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table({table!r})
'''


def write_revision(project: Project, revision: str, down: str | None) -> None:
    path = project.migrations / "versions" / f"{revision}_step.py"
    path.write_text(REVISION.format(
        message=f"create t_{revision}", revision=revision, down=down, table=f"t_{revision}",
    ))


def imported(project: Project) -> list[str]:
    log = project.path / "imports.log"
    text = log.read_text() if log.exists() else ""
    log.write_text("")
    return text.split()


def make(make_project) -> Project:
    project = make_project("single")
    project.front = "flask"
    project.env["IMPORT_LOG"] = str(project.path / "imports.log")
    project.ok("init")
    write_revision(project, "a1", None)
    write_revision(project, "b2", "a1")
    return project


def test_upgrade_at_head_imports_no_revision_file(make_project):
    project = make(make_project)
    project.ok("upgrade")
    assert sorted(imported(project)) == ["a1", "b2"]
    memo = json.loads(project.migrations.joinpath(*MEMO).read_text())
    assert memo["heads"] == ["b2"]

    again = project.ok("upgrade")

    assert imported(project) == []
    assert versions(project.url) == {"b2"}
    assert "Applied" not in again.stderr


def test_a_new_revision_file_is_seen(make_project):
    project = make(make_project)
    project.ok("upgrade")
    imported(project)
    write_revision(project, "c3", "b2")

    result = project.ok("upgrade")

    assert "Applied c3" in result.stderr
    assert versions(project.url) == {"c3"}
    assert json.loads(project.migrations.joinpath(*MEMO).read_text())["heads"] == ["c3"]


def test_an_edited_revision_file_is_seen(make_project):
    """Same name, same size, other content: the memo no longer applies."""
    project = make(make_project)
    project.ok("upgrade")
    imported(project)
    path = project.migrations / "versions" / "b2_step.py"
    path.write_text(path.read_text().replace("create t_b2", "create t_B2"))

    project.ok("upgrade")

    assert sorted(imported(project)) == ["a1", "b2"]


def test_a_database_behind_the_memo_is_upgraded(make_project):
    project = make(make_project)
    project.ok("upgrade")
    project.ok("downgrade", "a1")
    imported(project)

    result = project.ok("upgrade")

    assert "Applied b2" in result.stderr
    assert versions(project.url) == {"b2"}


def test_a_broken_memo_is_ignored_and_rewritten(make_project):
    project = make(make_project)
    project.ok("upgrade")
    memo = project.migrations.joinpath(*MEMO)
    memo.write_text("{not json")
    imported(project)

    project.ok("upgrade")

    assert sorted(imported(project)) == ["a1", "b2"]
    assert json.loads(memo.read_text())["heads"] == ["b2"]
