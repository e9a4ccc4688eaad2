"""The pytest plugin (``flask_migrate.pytest_plugin``): ``db test`` and migrated throwaway
databases in a project's own test suite.

Each case runs pytest in a subprocess (``pytester``) on a copy of ``tests/apps/tested`` with a
hand-written history, as a project using the plugin would.  ``-p no:flask_migrate`` keeps the
entry point of an installed copy out, so that the plugin of this worktree is the one loaded.
"""
from __future__ import annotations

import configparser
import shutil
from pathlib import Path

import pytest

from tests.conftest import APPS, Project, sqlite_url
from tests.customers import ADD_TOTAL, CUSTOMER, DROP_TOTAL, ORDERS
from tests.guarantee_helpers import write_revision

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ("-p", "no:flask_migrate", "-p", "flask_migrate.pytest_plugin")

DATA_MIGRATION = ADD_TOTAL + '\nop.execute("UPDATE orders SET total = 10")\n'

USER_TESTS = '''
import sqlalchemy as sa


def test_migrations(migrator):
    migrator.check()


def test_a_data_migration(migrator):
    migrator.upgrade("b2")
    with migrator.engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO customer (id, name) VALUES (1, 'ann')"))
        connection.execute(sa.text("INSERT INTO orders (id, customer_id) VALUES (1, 1)"))
    migrator.upgrade("c3")
    with migrator.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT total FROM orders")).scalar() == 10
    migrator.downgrade("a1")
    assert sa.inspect(migrator.engine).get_table_names() == ["alembic_version", "customer"]
'''


@pytest.fixture
def user_project(pytester: pytest.Pytester, migrations_folder: Path, monkeypatch) -> Project:
    """A project that uses the plugin: the tested app, its history, and its own tests."""
    shutil.copy(APPS / "tested" / "app.py", pytester.path / "app.py")
    shutil.copytree(migrations_folder, pytester.path / "migrations")
    project = Project(pytester.path, "tested", {}, None)
    write_revision(project, "a1", None, CUSTOMER, 'op.drop_table("customer")', "customers")
    write_revision(project, "b2", "a1", ORDERS, 'op.drop_table("orders")', "orders")
    write_revision(project, "c3", "b2", DATA_MIGRATION, DROP_TOTAL, "order totals")
    monkeypatch.setenv("FLASK_APP", "app.py")
    monkeypatch.setenv("DATABASE_URL", sqlite_url(pytester.path / "app.db"))
    monkeypatch.delenv("FLASK_DB_DIRECTORY", raising=False)
    return project


def test_the_suite_and_a_data_migration_pass(pytester: pytest.Pytester, user_project: Project):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(*PLUGIN, "-q")
    result.assert_outcomes(passed=2)
    assert not (pytester.path / "app.db").exists()  # the application's own database


def test_a_failing_history_fails_the_test_with_its_lines(
    pytester: pytest.Pytester, user_project: Project
):
    write_revision(user_project, "c3", "b2", ADD_TOTAL, "pass", "order totals")
    pytester.makepyfile(test_user="def test_migrations(migrator):\n    migrator.check()\n")
    result = pytester.runpytest_subprocess(*PLUGIN, "-q")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*FAIL round trip of c3 (order totals): after the downgrade, column orders.total is "
        "left*",
    ])


def test_the_app_fixture_can_be_overridden(
    pytester: pytest.Pytester, user_project: Project, monkeypatch
):
    monkeypatch.delenv("FLASK_APP")
    pytester.makeconftest(
        "import pytest\n\n\n@pytest.fixture\ndef flask_migrate_app():\n"
        "    from app import app\n    app.config['OVERRIDDEN'] = True\n    return app\n"
    )
    pytester.makepyfile(test_user=(
        "def test_migrations(migrator):\n    assert migrator.app.config['OVERRIDDEN']\n"
        "    migrator.check()\n"
    ))
    result = pytester.runpytest_subprocess(*PLUGIN, "-q")
    result.assert_outcomes(passed=1)


def test_the_plugin_is_inert_unless_used(pytester: pytest.Pytester, user_project: Project):
    pytester.makepyfile(test_user=(
        "import sys\n\n\ndef test_nothing_ran():\n"
        "    assert 'flask_migrate.testing' not in sys.modules\n"
        "    assert 'app' not in sys.modules\n"
    ))
    result = pytester.runpytest_subprocess(*PLUGIN, "-q")
    result.assert_outcomes(passed=1)


def test_the_entry_point_is_declared():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    declared = parser.get("options.entry_points", "pytest11").split()
    assert declared == ["flask_migrate", "=", "flask_migrate.pytest_plugin"]
