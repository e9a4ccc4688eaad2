"""The tool floor: the least any migration tool can do to bring a fresh database to head.

``python benchmarks/floor_upgrade.py PROJECT`` runs in the environment ``flask db upgrade`` runs
in (``BENCH_DATABASE_URL`` names the database).  It imports the application
(``PROJECT/app.py``), loads every revision module of ``PROJECT/migrations/versions`` the way
Alembic loads them (from their files, byte-compiled caches included), puts them in chain order,
and runs each ``upgrade()`` through Alembic's ``Operations`` on one connection in one
transaction, recording each step in ``alembic_version`` as Alembic does: the table, an INSERT
for the first revision, then one UPDATE per revision.  Nothing else: no command line, no script
directory or revision map, no env.py, no logging, no check of the current revision.

On SQLite the driver commits every DDL statement on its own (Python's ``sqlite3`` only opens
transactions before INSERT/UPDATE/DELETE), so the connection here follows SQLAlchemy's
documented recipe for pysqlite: the driver's transaction handling off, and an explicit
``BEGIN`` when SQLAlchemy begins.  The whole upgrade is then one transaction on SQLite as on
PostgreSQL: one commit, hence one round of syncs to disk.

``benchmarks/migrations.py`` also imports this module, to load the chain and to write the same
statements as a plain SQL script (:func:`write_sql`) for the raw-driver floor.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

#: Alembic's version table, with the column and constraint names Alembic gives it.
VERSION_TABLE = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def load_chain(versions: Path) -> list[ModuleType]:
    """Every revision module in *versions*, in apply order (base first).

    :raises ValueError: when the revisions are not one linear chain.
    """
    by_parent: dict[Any, ModuleType] = {}
    for path in versions.glob("*.py"):
        spec = importlib.util.spec_from_file_location(f"_floor_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        by_parent[module.down_revision] = module
    chain = []
    parent = None
    while parent in by_parent:
        module = by_parent.pop(parent)
        chain.append(module)
        parent = module.revision
    if by_parent or not chain:
        raise ValueError(f"the revisions in {versions} are not one linear chain")
    return chain


def record_step(previous: str | None, revision: str) -> Any:
    """The statement that records *revision* as applied after *previous*."""
    if previous is None:
        return VERSION_TABLE.insert().values(version_num=revision)
    return (
        VERSION_TABLE.update()
        .where(VERSION_TABLE.c.version_num == previous)
        .values(version_num=revision)
    )


def _sqlite_in_one_transaction(engine: sa.engine.Engine) -> None:
    """Make SQLAlchemy's transactions real SQLite transactions on this engine's connections."""

    def on_connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver no longer BEGINs or COMMITs itself

    def on_begin(connection: sa.engine.Connection) -> None:
        connection.exec_driver_sql("BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)


def upgrade(project: Path) -> None:
    """Apply every revision of *project* to the application's (empty) database."""
    sys.path.insert(0, str(project))
    app_module = importlib.import_module("app")
    with app_module.app.app_context():
        engine = app_module.db.engine
    if engine.dialect.name == "sqlite":
        _sqlite_in_one_transaction(engine)
    chain = load_chain(project / "migrations" / "versions")
    with engine.connect() as connection, connection.begin():
        context = MigrationContext.configure(connection)
        VERSION_TABLE.create(connection)
        previous = None
        with Operations.context(context):  # what `from alembic import op` in a revision uses
            for module in chain:
                module.upgrade()
                connection.execute(record_step(previous, module.revision))
                previous = module.revision


def write_sql(chain: list[ModuleType], dialect_name: str, out: TextIO) -> None:
    """Write the statements :func:`upgrade` runs, for *dialect_name*, as an SQL script.

    Alembic's offline mode renders them; each ends with ``;`` and a blank line, and there is
    no ``BEGIN``/``COMMIT``: whoever runs the script supplies the transaction.
    """
    context = MigrationContext.configure(
        dialect_name=dialect_name,
        opts={"as_sql": True, "output_buffer": out, "literal_binds": True},
    )
    operations = Operations(context)
    operations.execute(sa.schema.CreateTable(VERSION_TABLE))
    previous = None
    with Operations.context(context):
        for module in chain:
            module.upgrade()
            operations.execute(record_step(previous, module.revision))
            previous = module.revision


if __name__ == "__main__":
    if len(sys.argv) != 2 or "BENCH_DATABASE_URL" not in os.environ:
        sys.exit("usage: BENCH_DATABASE_URL=URL python floor_upgrade.py PROJECT")
    upgrade(Path(sys.argv[1]).resolve())
