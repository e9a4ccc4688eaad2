"""``flask db test`` against pytest-alembic's built-in tests, on the same generated history.

Both run as whole processes, in interleaved rounds (the order rotates every round), on the
project ``benchmarks/migrations.py`` generates (N linear revisions, each a table with an
index), each on a fresh database: SQLite and, when Debian's ``postgresql`` is installed,
PostgreSQL.  pytest-alembic runs its four default tests (single head, upgrade, models match
the DDL, up/down consistency), imported into a test module; ``flask db test`` runs its own
(the same, plus a schema comparison after every downgrade and re-upgrade).  The ratio is the
median of the per-round ratios ``db test / pytest-alembic``; the target is 0.5 or less.

    .venv/modern/bin/python benchmarks/dbtest.py            # N = 100, 3 rounds, both databases
    .venv/modern/bin/python benchmarks/dbtest.py --repeat 5 --db sqlite

At N = 100, one round on 2 shared CPUs (commit of this file): SQLite 2.66 s against 6.12 s,
0.43x (target met); PostgreSQL 20.7 s against 11.5 s, 1.80x (target missed: see the report).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import migrations as bench  # noqa: E402  (benchmarks/migrations.py, beside this file)

TARGET = 0.5

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


def _require_pytest_alembic() -> None:
    try:
        import pytest_alembic  # noqa: F401
    except ImportError:
        requirements = HERE.parent / "requirements" / "bench.txt"
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)],
                       check=True)


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


def _with_models(project: bench.Project, work: Path) -> bench.Project:
    """A copy of the generated project whose application has the models of its revisions."""
    root = work / "project"
    shutil.copytree(project.root, root)
    width = max(4, len(str(project.n)))
    app = root / "app.py"
    app.write_text(app.read_text() + MODELS.format(n=project.n, width=width))
    (root / "conftest.py").write_text(CONFTEST, encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\n")  # not the configuration of our own tests
    # Its built-in tests imported, as its documentation allows (its --test-alembic collector
    # fails on pytest 9).
    (root / "test_migrations.py").write_text(
        "from pytest_alembic.tests import (  # noqa: F401\n"
        "    test_model_definitions_match_ddl, test_single_head_revision,\n"
        "    test_up_down_consistency, test_upgrade,\n)\n"
    )
    return bench.Project(n=project.n, root=root, head=project.head)


def _programs(project: bench.Project) -> dict[str, list[str]]:
    return {
        "db test": [bench._venv_bin("flask"), "db", "test"],
        "pytest-alembic": [
            sys.executable, "-m", "pytest", "-q", "test_migrations.py",
            "-p", "no:cacheprovider", "-p", "no:flask_migrate", f"--rootdir={project.root}",
        ],
    }


def measure(db: str, n: int, repeat: int, work: Path) -> list[float]:
    log = lambda text: print(f"  {text}", file=sys.stderr)  # noqa: E731
    project = _with_models(bench.make_project(work.parent, n, log), work)
    programs = _programs(project)
    if db == "sqlite":
        databases: bench.Databases = bench.SqliteDatabases(work)
    else:
        databases = bench.PostgresDatabases(n)
    times: dict[str, list[float]] = {label: [] for label in programs}
    try:
        labels = list(programs)
        for round_ in range(repeat + 1):  # the first is a warm-up
            for label in labels[round_ % 2:] + labels[:round_ % 2]:
                url = databases.fresh()
                run = bench.run_program(programs[label], project.root, bench._child_env(url),
                                        work / "dbtest.log", label)
                databases.drop(url)
                if round_:
                    times[label].append(run.wall)
    finally:
        databases.close()
    ratios = [a / b for a, b in zip(times["db test"], times["pytest-alembic"])]
    ratio = statistics.median(ratios)
    verdict = "pass" if ratio <= TARGET else "FAIL"
    print(f"{db:<10} N={n:<5} db test {statistics.median(times['db test']):6.2f}s  "
          f"pytest-alembic {statistics.median(times['pytest-alembic']):6.2f}s  "
          f"ratio {ratio:.2f}x (rounds {min(ratios):.2f}-{max(ratios):.2f})  "
          f"target {TARGET}x  {verdict}")
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--work", type=Path, default=bench.ROOT / "build" / "bench")
    options = parser.parse_args()
    _require_pytest_alembic()
    # The flask_migrate of this checkout, whatever copy the venv has installed.
    bench.PACKAGE_PATH[:] = [str(bench.ROOT)]
    options.work.mkdir(parents=True, exist_ok=True)
    missed = False
    dbs = ("sqlite", "postgresql") if options.db == "both" else (options.db,)
    for db in dbs:
        if db == "postgresql" and not bench._benchmark_server_class().available()[0]:
            print("postgresql: skipped, no PostgreSQL server binaries", file=sys.stderr)
            continue
        with tempfile.TemporaryDirectory(dir=options.work) as scratch:
            ratios = measure(db, options.n, options.repeat, Path(scratch))
        missed |= statistics.median(ratios) > TARGET
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
