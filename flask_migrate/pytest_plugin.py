"""The pytest plugin: ``db test`` and throwaway migrated databases in a project's own tests.

Registered through the ``pytest11`` entry point, it only declares fixtures: nothing runs, and
nothing of Flask or Flask-Migrate is imported, unless a test asks for one of them.

- ``flask_migrate_app``: the application under test.  By default the one ``flask`` would load
  ($FLASK_APP, or ``app.py``/``wsgi.py``); override the fixture in a ``conftest.py`` to return
  another (an app factory's, say).
- ``migrator``: a :class:`Migrator` whose databases are throwaway ones for the length of the
  test (a temporary SQLite file, or a database created on the server of the application's URL
  and dropped afterwards), inside an application context.

The migration tests of ``db test`` in one test::

    def test_migrations(migrator):
        migrator.check()

A data migration, tested by inserting rows at one revision and reading them at the next::

    def test_totals_are_computed(migrator):
        migrator.upgrade("b2")
        with migrator.engine.begin() as connection:
            connection.execute(sa.text("INSERT INTO orders (id, price, count) VALUES (1, 3, 2)"))
        migrator.upgrade("c3")
        with migrator.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT total FROM orders")).scalar() == 6
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import pytest

if TYPE_CHECKING:  # imported only when a test asks for a fixture (see above)
    from flask import Flask
    from sqlalchemy.engine import Engine

    from .testing import TestReport


class Migrator:
    """The migrations of one application, run on its throwaway databases.

    :param app: the Flask application (with ``Migrate`` set up).
    :param directory: the migrations folder (default: the one given to ``Migrate``).
    """

    def __init__(self, app: Flask, directory: str | None = None) -> None:
        self.app = app
        self.directory = directory
        #: Database name (``""`` for the default one) -> masked URL of its throwaway stand-in.
        self.databases: dict[str, str] = {}

    def upgrade(self, revision: str = "head") -> None:
        """Upgrade the throwaway databases to ``revision``."""
        from . import commands

        commands.upgrade(self.directory, revision)

    def downgrade(self, revision: str = "-1") -> None:
        """Downgrade the throwaway databases to ``revision``."""
        from . import commands

        commands.downgrade(self.directory, revision)

    def engine_of(self, name: str = "") -> Engine:
        """The engine of throwaway database ``name`` (``""``: the default database)."""
        from .extension import require_record
        from .runtime import binds

        return binds.engine(require_record(), name)

    @property
    def engine(self) -> Engine:
        """The engine of the default throwaway database."""
        return self.engine_of("")

    def run_tests(self) -> TestReport:
        """Run the tests of ``db test`` (on throwaway databases of their own) and return the
        :class:`~flask_migrate.testing.TestReport`."""
        from . import commands

        return commands.test(self.directory)

    def check(self) -> None:
        """Run the tests of ``db test``; fail the pytest test with the lines that failed."""
        report = self.run_tests()
        if not report.passed:
            pytest.fail("\n".join(
                line for line in report.lines() if not line.startswith("PASS")
            ), pytrace=False)


@pytest.fixture
def flask_migrate_app() -> Flask:
    """The application whose migrations are tested: the one ``flask`` would load.

    Override this fixture in a ``conftest.py`` to return your application.
    """
    from flask.cli import NoAppException, ScriptInfo

    try:
        return ScriptInfo().load_app()
    except NoAppException as error:
        pytest.fail(
            f"flask_migrate: no application to test ({error}); set FLASK_APP, or define a "
            "'flask_migrate_app' fixture in conftest.py that returns the application",
            pytrace=False,
        )


@pytest.fixture
def migrator(flask_migrate_app: Flask) -> Iterator[Migrator]:
    """A :class:`Migrator` on throwaway databases, inside an application context."""
    from .extension import require_record
    from .testing import throwaway

    with flask_migrate_app.app_context():
        runner = Migrator(flask_migrate_app)
        with throwaway(require_record()) as databases:
            runner.databases = databases
            yield runner
