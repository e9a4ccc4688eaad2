"""Empty migrations folders of every generation of the original Flask-Migrate.

``tests/legacy_repos/generations/<kind>/`` holds an ``env.py``, ``alembic.ini`` (rendered, with
the logging sections ``fileConfig()`` needs and no ``sqlalchemy.url``), ``script.py.mako`` and
``README`` in the shape ``db init`` of one range of Flask-Migrate 1.x-4.x releases wrote them, and
a few folders with the edits users made to theirs (explicit ``configure()`` keywords, an
``include_object``, another version table, their own ``process_revision_directives``).  They are
hand-written: each uses the same calls, control flow and configure arguments as the release it
stands for (how it gets the URL, the engine, the metadata, how it opens and commits
transactions), with comments, docstrings and local names of its own; no text of the original
templates is copied.  None has a ``versions/`` folder: :func:`install` creates an empty one and
the tests write the revisions.

The single-database kinds write ``upgrade()`` / ``downgrade()`` revisions, the multi-database
ones ``upgrade(engine_name)`` dispatching to ``upgrade_<name>()`` (``upgrade_`` for the default
database).  The 1.x-2.x kinds expect Flask-SQLAlchemy 2 (``db.get_engine(app, bind)``,
``info['bind_key']``); the 4.x kinds know both Flask-SQLAlchemy 2 and 3.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

#: Where the folders are.
ROOT = Path(__file__).resolve().parent / "legacy_repos" / "generations"


@dataclass(frozen=True)
class Generation:
    """One folder of :data:`ROOT`.

    :param name: the folder's name, e.g. ``"fm26-multidb"``.
    :param multidb: revisions have ``upgrade_<name>()`` for each database.
    :param asynchronous: env.py runs the migrations on an asyncio connection.
    :param version_table: the table its env.py records the applied revisions in.
    :param description: the releases it stands for and what sets it apart.
    """

    name: str
    multidb: bool
    asynchronous: bool
    version_table: str
    description: str

    @property
    def path(self) -> Path:
        return ROOT / self.name


def _generation(name: str, multidb: bool = False, asynchronous: bool = False,
                version_table: str = "alembic_version", description: str = "") -> Generation:
    return Generation(name, multidb, asynchronous, version_table, description)


#: name -> its :class:`Generation`.
GENERATIONS: dict[str, Generation] = {g.name: g for g in (
    _generation("fm1", description=(
        "1.6-2.3.0: raw SQLALCHEMY_DATABASE_URI, engine_from_config + NullPool, "
        "engine.connect() and try/finally, configure_args, offline configure(url=url) only")),
    _generation("fm20", description=(
        "2.4-2.5.2: raw SQLALCHEMY_DATABASE_URI with '%' doubled, engine_from_config, "
        "'with connectable.connect()', offline literal_binds")),
    _generation("fm26", description=(
        "2.5.3-2.6.x: str(db.engine.url) with '%' doubled, engine_from_config + NullPool")),
    _generation("fm27", description=(
        "2.7-3.0.x: str(db.engine.url), migrating through db.engine itself")),
    _generation("fm3", description=(
        "3.1.x: db.get_engine() for the URL and the connection, db.metadata")),
    _generation("fm4", description=(
        "4.0.5-4.1.x: get_engine()/get_engine_url() helpers, get_metadata() with "
        "metadatas[None], conf_args")),
    _generation("fm4-async", asynchronous=True, description=(
        "4.0.5-4.1.x aioflask: the app's async engine, connection.run_sync(), "
        "get_event_loop().run_until_complete()")),
    _generation("fm26-multidb", multidb=True, description=(
        "2.5.3-2.6.x multi-database: SQLALCHEMY_BINDS, db.get_engine(current_app, bind), "
        "engine_from_config per bind, tables split by info['bind_key'], commit all at the end")),
    _generation("fm4-multidb", multidb=True, description=(
        "4.0.5-4.1.x multi-database: get_engine(bind_key) falling back to db.engines, "
        "get_metadata(bind) with metadatas, conf_args, commit all at the end")),
    _generation("fm26-custom", version_table="schema_history", description=(
        "fm26 with explicit compare_type, compare_server_default, render_as_batch, "
        "include_object and version_table next to configure_args")),
    _generation("fm26-multidb-custom", multidb=True, description=(
        "fm26-multidb with explicit compare_type and compare_server_default next to "
        "configure_args, and an include_object")),
    _generation("fm4-custom", version_table="schema_history", description=(
        "fm4 with version_table and render_as_batch put into conf_args and its own "
        "process_revision_directives")),
)}

#: The single-database kinds that run on a synchronous connection.
SINGLE = [g.name for g in GENERATIONS.values() if not g.multidb and not g.asynchronous]
#: The multi-database kinds.
MULTIDB = [g.name for g in GENERATIONS.values() if g.multidb]
#: The asyncio kinds.
ASYNC = [g.name for g in GENERATIONS.values() if g.asynchronous]


def install(kind: str, migrations: Path) -> None:
    """Copy tests/legacy_repos/generations/<kind>/ to `migrations` (which must not exist) and
    create an empty versions/ folder in it."""
    source = GENERATIONS[kind].path
    migrations = Path(migrations)
    if migrations.exists():
        raise FileExistsError(f"{migrations} already exists")
    shutil.copytree(source, migrations, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (migrations / "versions").mkdir()
