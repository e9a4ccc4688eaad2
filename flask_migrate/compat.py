"""What keeps an env.py written for an older Flask-Migrate working as its authors meant.

Folders written by Flask-Migrate 1.x-4.x carry a full env.py, often hand-edited, that was
written against Flask-SQLAlchemy 2 and SQLAlchemy 1.x.  While a command runs such an env.py,
:func:`old_env_support` gives it the objects it expects, and puts everything back afterwards
(our own thin env.py never sees any of this):

- the Flask-SQLAlchemy 3 object as a :class:`DatabaseView`: ``get_engine(app, bind)`` works
  as in 2.x, and, for an env.py that picks each bind's tables from ``db.metadata`` by
  ``table.info['bind_key']``, ``db.metadata`` holds every bind's tables marked that way;
- ``configure_args`` without the keys env.py passes to ``configure()`` by name next to
  ``**configure_args``, so that ``compare_type=True, **...configure_args`` is env.py's own
  choice instead of a ``TypeError``;
- URLs written into ``sqlalchemy.url`` that name the database the application really uses:
  a ``str(engine.url)`` whose password SQLAlchemy 2 masked, or the configured
  ``SQLALCHEMY_DATABASE_URI`` of a relative SQLite path, which Flask-SQLAlchemy resolves
  elsewhere (3.x: the instance folder; 2.x: the application's folder).  The real URL only
  ever lives in the in-memory configuration.

It imports SQLAlchemy, Flask, :mod:`flask_migrate.extension`, :mod:`flask_migrate.folder`
and :mod:`flask_migrate.runtime.binds`.
"""
from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any, Iterator, Union

import sqlalchemy as sa
from flask import current_app

from .errors import MigrateError
from .extension import MigrateRecord, current_record
from .folder import EnvPy, folder_of
from .runtime import binds

if TYPE_CHECKING:
    from alembic.config import Config
    from flask import Flask
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    #: An engine as handed to env.py: an ``AsyncEngine`` for the asyncio env.py of 4.x.
    HandedOut = Union[Engine, AsyncEngine]

#: What SQLAlchemy 2 puts in place of a password when a URL is turned into text.
_PASSWORD_MASK = "***"


class DatabaseView:
    """A Flask-SQLAlchemy 3 object, as env.py files written for Flask-SQLAlchemy 2 use it.

    Every attribute is the object's own, except :meth:`get_engine`, which also accepts 2.x's
    ``get_engine(app, bind)`` (Flask-SQLAlchemy 3 takes ``get_engine(bind_key)`` only, so the
    multi-database env.py of Flask-Migrate 2.x failed with a ``TypeError``), and, with
    ``bind_key_tables``, :attr:`metadata`.  With ``asynchronous`` (the asyncio env.py of
    Flask-Migrate 4, which expects an ``AsyncEngine``), an engine whose driver is async is
    handed out as an ``AsyncEngine``: Flask-SQLAlchemy makes a synchronous ``Engine`` of it.
    """

    __wrapped__: binds.FlaskSQLAlchemy3
    _bind_key_tables: bool
    _asynchronous: bool

    def __init__(
        self, db: binds.FlaskSQLAlchemy3, bind_key_tables: bool = False,
        asynchronous: bool = False,
    ) -> None:
        object.__setattr__(self, "__wrapped__", db)
        object.__setattr__(self, "_bind_key_tables", bind_key_tables)
        object.__setattr__(self, "_asynchronous", asynchronous)

    # Whatever the wrapped object has, of whatever type.
    def __getattr__(self, name: str) -> Any:
        return getattr(object.__getattribute__(self, "__wrapped__"), name)

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self.__wrapped__, name, value)

    def __eq__(self, other: object) -> bool:
        return other is self or other is self.__wrapped__

    def __hash__(self) -> int:
        return hash(self.__wrapped__)

    def __repr__(self) -> str:
        return repr(self.__wrapped__)

    def get_engine(
        self, app: Flask | str | None = None, bind: str | None = None, **kwargs: str | None
    ) -> HandedOut:
        """The engine of ``bind`` (None: the default database), called as in 2.x or 3.x."""
        if isinstance(app, str):  # 3.x: get_engine("users")
            app, bind = None, app
        key = kwargs.pop("bind_key", bind)
        try:
            return self._handed_out(self.__wrapped__.engines[key])
        except KeyError:
            raise MigrateError(
                f"env.py asked for the engine of bind '{key}', which the application does not "
                "configure; check SQLALCHEMY_BINDS"
            ) from None

    @property
    def engine(self) -> HandedOut:
        return self._handed_out(self.__wrapped__.engine)

    def _handed_out(self, engine: Engine) -> HandedOut:
        if self._asynchronous and getattr(engine.dialect, "is_async", False):
            from sqlalchemy.ext.asyncio import AsyncEngine

            return AsyncEngine(engine)
        return engine

    @property
    def metadata(self) -> sa.MetaData:
        """The default database's models or, for an env.py that selects tables by
        ``info['bind_key']``, every database's models, each marked as Flask-SQLAlchemy 2 did."""
        if not self._bind_key_tables:
            return self.__wrapped__.metadata
        return _marked_metadata(self.__wrapped__)


def _marked_metadata(db: binds.FlaskSQLAlchemy3) -> sa.MetaData:
    """Copies of every bind's tables in one ``MetaData``, with ``info['bind_key']`` set."""
    combined = sa.MetaData()
    for key, metadata in db.metadatas.items():
        for table in metadata.tables.values():
            if table.key in combined.tables:
                continue  # the same name in two databases: the default database's wins
            copy = table.to_metadata(combined)
            copy.info["bind_key"] = key
    return combined


def _configured_urls(record: MigrateRecord) -> dict[str, str]:
    """Database name -> the URL as the application's configuration spells it."""
    config = current_app.config
    found: dict[str, str] = {}
    uri = config.get("SQLALCHEMY_DATABASE_URI")
    if uri:
        found[binds.DEFAULT] = str(uri)
    for name, value in (config.get("SQLALCHEMY_BINDS") or {}).items():
        if isinstance(value, dict):
            value = value.get("url")
        if value:
            found[str(name)] = str(value)
    return found


def resolve_url(value: str, record: MigrateRecord | None = None) -> str:
    """The URL an old env.py meant when it wrote ``value`` into ``sqlalchemy.url``.

    ``value`` may be the masked form of one of the application's database URLs (SQLAlchemy 2's
    ``str(url)``) or the URL as configured, which Flask-SQLAlchemy resolves to another SQLite
    file; either way (``%`` doubled or not, as the ini parser wants) the URL of the engine the
    application really uses is returned, ``%`` doubled.  Any other value is returned unchanged.
    """
    record = record or current_record()
    if record is None or not isinstance(value, str):
        return value
    configured = _configured_urls(record)
    for name in binds.database_names(record, multidb=True):
        try:
            url = binds.engine(record, name).url
        except Exception:  # a database the app cannot reach here is not the one meant
            continue
        real = url.render_as_string(hide_password=False)
        candidates = {configured[name]} if configured.get(name) is not None else set()
        if _PASSWORD_MASK in value:
            candidates.add(url.render_as_string(hide_password=True))
        # The real URL itself too: written as it is, a '%' in it would trip the ini parser.
        candidates.add(real)
        for candidate in candidates:
            if value in (candidate, candidate.replace("%", "%%")):
                return real.replace("%", "%%")
    return value


# Alembic's configure() arguments, of any type.
def _filtered_args(configure_args: dict[str, Any], env: EnvPy) -> dict[str, Any]:
    """``configure_args`` less the keys env.py passes by name next to ``**configure_args``."""
    return {
        key: value for key, value in configure_args.items()
        if key not in env.explicit_configure_args
    }


@contextlib.contextmanager
def old_env_support(config: Config) -> Iterator[None]:
    """While a command runs an env.py that is not one of ours, give it what it expects.

    Does nothing for our own env.py files, outside an application, or without the extension.
    """
    record = current_record()
    env = folder_of(config).old_env
    if record is None or env is None:
        yield
        return
    saved_db, saved_args = record.db, record.configure_args
    if binds.is_fsa3(saved_db):
        bind_key_tables = "bind_key_filter" in env.constructs and "metadatas" not in env.constructs
        record.db = DatabaseView(
            saved_db, bind_key_tables=bind_key_tables, asynchronous=env.asynchronous
        )
    # A copy in any case: Flask-Migrate 4's env.py adds its own hook to the dict it is given.
    record.configure_args = _filtered_args(saved_args, env)
    original_set = config.set_section_option

    @functools.wraps(original_set)
    def set_section_option(section: str, name: str, value: str) -> None:
        if name == "sqlalchemy.url":
            value = resolve_url(value, record)
        original_set(section, name, value)

    # On this one Config object, for the length of the block.
    config.set_section_option = set_section_option  # type: ignore[method-assign]
    try:
        yield
    finally:
        del config.set_section_option
        record.db, record.configure_args = saved_db, saved_args
