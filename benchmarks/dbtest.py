"""The ``dbtest`` case of ``benchmarks/run``: ``flask db test`` against pytest-alembic.

Both run as whole processes, in the interleaved rounds of ``benchmarks/migrations.py``, on the
project it generates (N linear revisions, each a table with an indexed column), to which this
module adds the models of those tables (so that both tools find the models match the schema),
pytest-alembic's fixtures and a test module importing its four built-in tests (single head,
upgrade, models match the DDL, up/down consistency).  ``flask db test`` runs its own: the same,
plus a comparison of the whole reflected schema after every downgrade and every upgrade that
follows it.  Each program gets a fresh database (``db test`` makes its throwaway one on the
same server, or a temporary SQLite file).

pytest-alembic is installed only in the benchmark's own venv (``.venv/bench-STACK``, which
``benchmarks/run`` makes from ``requirements/STACK.txt`` and ``requirements/bench.txt``), never
in the venvs of the test suite, whose collection its pytest plugin would break.

    benchmarks/run --case dbtest                  # N = 100, SQLite and PostgreSQL
    benchmarks/run --case dbtest --db postgresql --repeat 5
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

#: Issue 11: ``db test`` at most this times pytest-alembic, at N = TARGET_N.
TARGET = 0.5
TARGET_N = 100

CONFTEST = '''\
"""pytest-alembic's fixtures for the generated Flask application."""
import os

import pytest
import sqlalchemy as sa

from app import app


@pytest.fixture
def alembic_config():
    from pytest_alembic.config import Config

    return Config(config_options={"script_location": "migrations"})


@pytest.fixture
def alembic_engine():
    # env.py runs inside the application, whose database is this one.
    with app.app_context():
        engine = sa.create_engine(os.environ["BENCH_DATABASE_URL"])
        yield engine
        engine.dispose()
'''

MODELS = '''

# The models the revisions create, so that both tools find the models match the schema.
for _number in range(1, {n} + 1):
    _name = f"t{{_number:0{width}d}}"
    type(_name, (db.Model,), {{
        "__tablename__": _name,
        "id": db.Column(db.Integer, primary_key=True),
        "name": db.Column(db.String(64), index=True),
    }})
'''

# Its built-in tests imported, as its documentation allows (its --test-alembic collector fails
# on pytest 9).
TESTS = (
    "from pytest_alembic.tests import (  # noqa: F401\n"
    "    test_model_definitions_match_ddl, test_single_head_revision,\n"
    "    test_up_down_consistency, test_upgrade,\n)\n"
)


def require_pytest_alembic() -> str | None:
    """None when pytest-alembic imports, else why not and what to do."""
    try:
        import pytest_alembic  # noqa: F401
    except ImportError:
        return (f"the dbtest case needs pytest-alembic, which {sys.prefix} lacks: run it with "
                "benchmarks/run, which makes .venv/bench-STACK with requirements/bench.txt")
    return None


def with_models(bench: Any, project: Any, into: Path) -> Any:
    """A copy of the generated *project* in *into* whose application has the models of its
    revisions, with pytest-alembic's fixtures and tests beside it."""
    shutil.copytree(project.root, into)
    width = max(4, len(str(project.n)))
    app = into / "app.py"
    app.write_text(app.read_text() + MODELS.format(n=project.n, width=width))
    (into / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (into / "pytest.ini").write_text("[pytest]\n")  # not the configuration of our own tests
    (into / "test_migrations.py").write_text(TESTS, encoding="utf-8")
    return bench.Project(n=project.n, root=into, head=project.head)


def programs(bench: Any) -> list[Any]:
    """``db test`` and pytest-alembic, as programs of ``benchmarks/migrations.py``."""
    return [
        bench.Program("pytest-alembic", lambda p, db: [
            sys.executable, "-m", "pytest", "-q", "test_migrations.py", "-p", "no:cacheprovider",
            "-p", "no:flask_migrate", f"--rootdir={p.root}",
        ]),
        bench.Program("db test", lambda p, db: [bench._venv_bin("flask"), "db", "test"]),
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import migrations

    sys.exit(migrations.main(["--case", "dbtest", *sys.argv[1:]]))
