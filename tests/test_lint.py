"""``db lint``: what revisions do that would lock or break a live database.

The history under test (:func:`write_history`) has one revision per theme, each operation either
unsafe, tagged in the file with ``# expect: RULE-ID`` on its line, or safe, untagged.  The
linter must report exactly the tagged lines: every unsafe operation, with its rule and line, and
no safe one.  The application is ``tests/apps/guarded`` (its schema comes only from the
revision files) with a PostgreSQL URL that names no server: lint never connects.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from flask_migrate import linter
from tests.conftest import Project
from tests.guarantee_helpers import write_revision

#: A PostgreSQL URL with nothing listening behind it: any connection would fail.
NOWHERE_PG = "postgresql://lint:secret@127.0.0.1:9/nowhere"

FINDING = re.compile(
    r"^(?P<file>\S+?):(?P<line>\d+): (?P<severity>error|warning|note) (?P<rule>[\w-]+): "
    r"revision (?P<revision>\w+)"
)
#: A comment line above the line a finding must name: ``# expect: RULE-ID[, RULE-ID]``.
EXPECT = re.compile(r"^\s*# expect: ([\w, -]+)$")

#: (revision id, upgrade body) in history order.
HISTORY: list[tuple[str, str]] = [
    ("r01", """
        op.create_table(
            "user", sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("name", sa.String(50)), sa.Column("email", sa.String(100)),
        )
        op.create_table("post", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("user_id", sa.Integer), sa.Column("title", sa.String(80)))
        op.create_table("legacy", sa.Column("id", sa.Integer, primary_key=True))
        # New tables: nobody uses them yet, so nothing here is dangerous.
        op.create_index("ix_user_name", "user", ["name"])
        op.add_column("user", sa.Column("age", sa.Integer, nullable=False))
        op.create_foreign_key("fk_post_user", "post", "user", ["user_id"], ["id"])
        op.create_unique_constraint("uq_user_email", "user", ["email"])
        op.alter_column("post", "title", existing_type=sa.String(80), type_=sa.Integer)
    """),
    ("r02", """
        # expect: index-not-concurrent
        op.create_index("ix_user_email", "user", ["email"])
        # expect: index-not-concurrent
        op.drop_index("ix_user_name", table_name="user")
        # expect: concurrently-in-transaction
        op.create_index("ix_post_title", "post", ["title"],
                        postgresql_concurrently=True)
    """),
    ("r03", """
        with op.get_context().autocommit_block():
            op.create_index("ix_post_user", "post", ["user_id"], postgresql_concurrently=True)
            op.drop_index("ix_user_email", table_name="user", postgresql_concurrently=True)
            op.execute('CREATE INDEX CONCURRENTLY ix_raw ON "user" (name)')
        # expect: index-not-concurrent
        op.create_index("ix_tmp", "user", ["name"])
        # Created by this revision, so never in use: dropping it is safe.
        op.drop_index("ix_tmp", table_name="user")
    """),
    ("r04", """
        # expect: constraint-not-valid
        op.create_foreign_key("fk2", "post", "user", ["user_id"], ["id"])
        # expect: constraint-not-valid
        op.create_check_constraint("ck_age", "user", "age > 0")
        # expect: unique-without-index
        op.create_unique_constraint("uq_name", "user", ["name"])
        # NOT VALID, but validated in the same transaction.
        # expect: constraint-not-valid
        op.execute("ALTER TABLE post ADD CONSTRAINT ck_t CHECK (title <> '') NOT VALID; "
                   "ALTER TABLE post VALIDATE CONSTRAINT ck_t")
    """),
    ("r05", """
        op.create_foreign_key("fk3", "post", "user", ["user_id"], ["id"],
                              postgresql_not_valid=True)
        op.execute('ALTER TABLE "user" ADD CONSTRAINT uq_raw UNIQUE USING INDEX ix_raw')
        with op.get_context().autocommit_block():
            op.execute("ALTER TABLE post VALIDATE CONSTRAINT fk3")
    """),
    ("r06", """
        # expect: not-null-without-default
        op.add_column("user", sa.Column("nick", sa.String(20), nullable=False))
        # expect: volatile-default
        op.add_column("user", sa.Column("token", sa.String(36),
                                        server_default=sa.text("gen_random_uuid()")))
        # expect: set-not-null
        op.alter_column("user", "name", existing_type=sa.String(50), nullable=False)
        # expect: type-change
        op.alter_column("user", "email", existing_type=sa.String(100), type_=sa.Integer)
        # expect: rename-column
        op.alter_column("user", "age", new_column_name="years")
        with op.batch_alter_table("post") as batch_op:
            # expect: not-null-without-default
            batch_op.add_column(sa.Column("rank", sa.Integer, nullable=False))
            # expect: type-change
            batch_op.alter_column("title", existing_type=sa.String(80), type_=sa.String(20))
    """),
    ("r07", """
        op.add_column("user", sa.Column("bio", sa.Text))
        op.add_column("user", sa.Column("score", sa.Integer, nullable=False, server_default="0"))
        op.add_column("user", sa.Column("seen", sa.DateTime, server_default=sa.func.now()))
        op.alter_column("user", "name", existing_type=sa.String(50), type_=sa.String(200))
        op.alter_column("user", "bio", existing_type=sa.Text, server_default="")
        with op.batch_alter_table("post") as batch_op:
            batch_op.alter_column("title", existing_type=sa.String(80), type_=sa.Text)
    """),
    ("r08", """
        # expect: drop-column
        op.drop_column("post", "title")
        # expect: rename-table
        op.rename_table("post", "article")
        # expect: drop-table
        op.drop_table("legacy")
    """),
    ("r09", """
        # flask-migrate: accept drop-column -- the code stopped reading it in release 2.1
        op.drop_column("user", "bio")
    """),
    ("r10", """
        # expect: index-not-concurrent
        op.execute('CREATE INDEX ix_name ON "user" (name)')
        # expect: not-null-without-default, set-not-null
        op.execute('ALTER TABLE "user" ADD COLUMN flag boolean NOT NULL, '
                   'ALTER COLUMN email SET NOT NULL')
        # expect: rename-column, drop-table
        op.execute('ALTER TABLE "user" RENAME COLUMN email TO mail; DROP TABLE article')
        # expect: volatile-default
        op.execute('ALTER TABLE "user" ADD COLUMN u uuid DEFAULT gen_random_uuid()')
    """),
    ("r11", """
        op.execute("CREATE TABLE audit (id serial PRIMARY KEY, what text); "
                   "CREATE INDEX ix_audit ON audit (what); "
                   "ALTER TABLE audit ADD COLUMN at timestamptz NOT NULL")
        op.execute("ALTER TABLE article ADD COLUMN note text NOT NULL DEFAULT 'n/a'")
        op.execute("UPDATE audit SET what = 'x'")
        op.execute(sa.table("audit", sa.column("what")).update().values(what="y"))
    """),
    ("r12", """
        # A marker without a reason accepts nothing.
        # expect: drop-column
        op.drop_column("article", "note")
        # expect: accept-marker
        # flask-migrate: accept drop-column
        # expect: accept-marker
        # flask-migrate: accept no-such-rule -- because
        # expect: accept-unused
        # flask-migrate: accept rename-table -- nothing is renamed here
    """),
    ("r13", """
        op.add_column("user", sa.Column("v", sa.Integer))
        # expect: not-checked
        rows = op.get_bind().execute(sa.text("SELECT 1")).fetchall()
        op.drop_column("user", "v")
    """),
]

#: The revisions with nothing to report (besides r09's accepted finding).
SAFE = ("r01", "r05", "r07", "r09", "r11")


def write_history(project: Project, history: list[tuple[str, str]] = HISTORY) -> None:
    down = None
    for revision, body in history:
        write_revision(project, revision, down, upgrade=body)
        down = revision


def expected(project: Project, revisions: tuple[str, ...] | None = None) -> set[tuple]:
    """(file name, line, rule) that each ``# expect:`` tag of the written revisions names."""
    found = set()
    for path in project.revision_files():
        revision = path.name.split("_")[0]
        if revisions is not None and revision not in revisions:
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = EXPECT.match(line)
            if match:
                for rule in match.group(1).split(","):
                    found.add((path.name, number + 1, rule.strip()))
    return found


def reported(stdout: str) -> set[tuple]:
    found = set()
    for line in stdout.splitlines():
        match = FINDING.match(line)
        if match:
            found.add((Path(match["file"]).name, int(match["line"]), match["rule"]))
    return found


@pytest.fixture
def history(make_project, front) -> Project:
    project = make_project("guarded", DATABASE_URL=NOWHERE_PG)
    project.ok("init")
    write_history(project)
    return project


def test_every_unsafe_operation_is_found_and_no_safe_one(history):
    result = history.db("lint")

    assert result.returncode == 1, str(result)
    assert reported(result.stdout) == expected(history), str(result)
    lines = result.stdout.splitlines()
    finding = next(line for line in lines if "ix_user_email" in line)
    assert finding.startswith(os.path.join("migrations", "versions", "r02_.py") + ":")
    assert "error index-not-concurrent: revision r02 creates index ix_user_email" in finding
    # Each finding says why it is dangerous and what to do instead.
    after = lines[lines.index(finding) + 1:]
    assert after[0].startswith("    why: CREATE INDEX blocks every write")
    assert after[1].startswith("    instead: pass postgresql_concurrently=True")
    assert lines[-1].startswith("Checked 13 revisions for postgresql: ")
    assert lines[-1].endswith(" 1 accepted."), lines[-1]
    assert not any(f"revision {safe} " in line for safe in SAFE for line in lines
                   if FINDING.match(line))
    assert "Error" not in result.stderr, str(result)


def test_a_safe_history_exits_0(make_project, front):
    project = make_project("guarded", DATABASE_URL=NOWHERE_PG)
    project.ok("init")
    write_history(project, [(revision, body) for revision, body in HISTORY if revision in SAFE])

    result = project.ok("lint")

    assert result.stdout.splitlines() == [
        "Checked 5 revisions for postgresql: no findings, 1 accepted."
    ]


def test_rev_range_limits_the_revisions(history):
    result = history.db("lint", "-r", "r06:r08")
    assert result.returncode == 1, str(result)
    assert reported(result.stdout) == expected(history, ("r06", "r07", "r08"))

    last = history.db("lint", "--rev-range", "heads~1:")
    assert reported(last.stdout) == expected(history, ("r12", "r13")), str(last)
    assert last.stdout.splitlines()[-1].startswith("Checked 2 revisions")

    first = history.ok("lint", "-r", "base:r01")
    assert first.stdout.splitlines() == ["Checked 1 revision for postgresql: no findings."]

    bad = history.db("lint", "-r", "r06")
    assert bad.returncode == 2, str(bad)
    assert bad.stderr.strip().splitlines() == [
        "Error: the lint range 'r06' has no ':'; write it as [start]:[end], e.g. -r heads~2: "
        "or -r base:head"
    ]
    unknown = history.db("lint", "-r", "r99:")
    assert unknown.returncode == 1
    assert "Error: revision 'r99' is not in the migrations folder" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_mysql_gets_the_rules_that_apply_to_it(make_project):
    project = make_project("guarded", DATABASE_URL="mysql+pymysql://lint:secret@127.0.0.1:9/x")
    project.run("flask", "init")
    write_history(project)

    result = project.run("flask", "lint")

    assert result.returncode == 1, str(result)
    rules = {rule for _, _, rule in reported(result.stdout)}
    pg_only = {"index-not-concurrent", "concurrently-in-transaction", "constraint-not-valid",
               "unique-without-index"}
    assert not rules & pg_only, result.stdout
    assert {"not-null-without-default", "set-not-null", "type-change", "rename-column",
            "rename-table", "drop-column", "drop-table", "sql-not-checked"} <= rules
    # Raw SQL is not parsed for MySQL: a note per op.execute, nothing more.
    assert "runs raw SQL that is not checked: raw SQL is not parsed on mysql" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("Checked 13 revisions for mysql: ")


def test_dialect_option_and_sqlite(make_project):
    project = make_project("guarded")  # a SQLite file
    project.run("script", "init")
    write_history(project, HISTORY[:8])

    on_sqlite = project.run("script", "lint")
    rules = {rule for _, _, rule in reported(on_sqlite.stdout)}
    assert rules == {"not-null-without-default", "rename-column", "rename-table", "drop-column",
                     "drop-table", "sql-not-checked"}, on_sqlite.stdout

    as_pg = project.run("script", "lint", "--dialect", "postgresql")
    assert reported(as_pg.stdout) == expected(project), str(as_pg)

    bad = project.run("script", "lint", "--dialect", "nosuchdb")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "Error: unknown database kind 'nosuchdb' for --dialect; use postgresql, mysql, mariadb "
        "or sqlite"
    )


def test_raw_sql_without_pglast_is_a_note(make_project, tmp_path):
    blocker = tmp_path / "block"
    (blocker / "pglast").mkdir(parents=True)
    (blocker / "pglast" / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    project = make_project("guarded", DATABASE_URL=NOWHERE_PG)
    project.env["PYTHONPATH"] = os.pathsep.join(
        [str(blocker)] + [part for part in [os.environ.get("PYTHONPATH")] if part]
    )
    project.run("flask", "init")
    write_history(project, [HISTORY[0], ("r02", "op.execute('DROP TABLE legacy')")])

    result = project.run("flask", "lint")

    assert result.returncode == 0, str(result)
    assert "note sql-not-checked: revision r02 runs raw SQL that is not checked: pglast is not " \
           "installed (pip install Flask-Migrate[lint])" in result.stdout
    assert result.stdout.splitlines()[-1] == "Checked 2 revisions for postgresql: 1 note."


MULTIDB_REVISION = '''"""both databases"""
from alembic import op
import sqlalchemy as sa

revision = {revision!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade(engine_name):
    globals().get(f"upgrade_{{engine_name}}", lambda: None)()


def downgrade(engine_name):
    pass


def upgrade_():
{default}


def upgrade_users():
{users}


def upgrade_logs():
    pass
'''


def test_multidb_folder_checks_each_database_for_its_own_kind(make_project, front):
    # users is a PostgreSQL database, the default one and logs are SQLite files.
    project = make_project("multidb", USERS_URL=NOWHERE_PG)
    project.ok("init", "--multidb")
    versions = project.migrations / "versions"
    (versions / "m1_.py").write_text(MULTIDB_REVISION.format(
        revision="m1", down=None,
        default='    op.create_table("setting", sa.Column("id", sa.Integer, primary_key=True))',
        users='    op.create_table("account", sa.Column("id", sa.Integer, primary_key=True))\n'
              '    op.create_index("ix_a", "account", ["id"])',
    ))
    (versions / "m2_.py").write_text(MULTIDB_REVISION.format(
        revision="m2", down="m1",
        default='    op.create_index("ix_s", "setting", ["id"])\n'
                '    op.drop_table("setting")',
        users='    op.create_index("ix_b", "account", ["id"])',
    ))

    result = project.db("lint")

    assert result.returncode == 1, str(result)
    findings = [line for line in result.stdout.splitlines() if FINDING.match(line)]
    assert len(findings) == 2, result.stdout
    assert findings[0].endswith(
        "m2_.py:21: error drop-table: revision m2 (database default) drops table setting")
    assert findings[1].endswith(
        "m2_.py:25: error index-not-concurrent: revision m2 (database users) creates index "
        "ix_b on table account without CONCURRENTLY")
    assert result.stdout.splitlines()[-1] == (
        "Checked 2 revisions for default:sqlite, users:postgresql, logs:sqlite: 2 errors.")


def test_migrate_prints_the_findings_of_the_new_revision(project, front):
    project.ok("init")
    first = project.ok("migrate", "-m", "users", env={"MODEL_VERSION": "2"})
    assert "db lint finds" not in first.output
    project.ok("upgrade", env={"MODEL_VERSION": "2"})

    # Back to version 1 of the models: autogenerate drops User.email.
    result = project.ok("migrate", "-m", "drop email", env={"MODEL_VERSION": "1"})

    lines = result.stdout.splitlines()
    start = lines.index("db lint finds, in the new revision:")
    assert re.match(r"migrations/versions/\w+_drop_email\.py:\d+: error drop-column: revision "
                    r"\w+ drops column user\.email$", lines[start + 1]), result.stdout
    assert lines[-1] == ("Fix the revision, or accept a finding with a marker (see 'db lint "
                         "--help').")


def test_the_api_returns_the_findings(make_project):
    project = make_project("guarded", DATABASE_URL=NOWHERE_PG)
    project.run("flask", "init")
    write_history(project, HISTORY[:2])
    (project.path / "probe.py").write_text(
        "from app import app\n"
        "import flask_migrate\n"
        "with app.app_context():\n"
        "    report = flask_migrate.lint()\n"
        "print(report.exit_code, len(report.errors))\n"
        "for f in report:\n"
        "    print(f.revision, f.line, f.rule, f.severity, f.accepted)\n"
    )
    completed = project.python("probe.py")
    assert completed.returncode == 0, str(completed)
    lines = completed.stdout.splitlines()
    assert lines[0] == "1 3"  # the API printed nothing before the probe's own lines
    assert lines[1:] == [
        f"r02 {line} {rule} error None"
        for _, line, rule in sorted(expected(project), key=lambda item: item[1])
    ]


def test_every_rule_has_why_and_instead_and_a_stable_id():
    for rule_id, rule in linter.RULES.items():
        assert re.fullmatch(r"[a-z]+(-[a-z]+)+", rule_id)
        assert rule.severity in (linter.ERROR, linter.WARNING, linter.NOTE)
        assert rule.texts
        for family, (why, instead) in rule.texts.items():
            assert family in (linter.POSTGRESQL, linter.MYSQL, linter.OTHER)
            assert why and instead and not why.endswith(".") and not instead.endswith(".")


def test_readme_lists_every_rule():
    readme = (Path(__file__).parent.parent / "README.rst").read_text(encoding="utf-8")
    section = readme.split("Safe deploys on PostgreSQL and MySQL", 1)[1]
    for rule_id in linter.RULES:
        assert f"``{rule_id}``" in section, rule_id
