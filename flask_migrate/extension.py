"""The ``Migrate`` extension and the record it leaves in ``app.extensions['migrate']``.

``init_app`` stores a :class:`MigrateRecord` with the attributes env.py files written for
Flask-Migrate 2.x-4.x read (``.migrate``, ``.db``, ``.directory``, ``.configure_args``,
``.metadata``) and registers the ``flask db`` group, whose module is imported only then.
:func:`current_record` is the one way the rest of the package finds that record.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol

from alembic.config import Config as AlembicConfig
from flask import current_app, has_app_context

from .errors import MigrateError

if TYPE_CHECKING:
    from flask import Flask
    from sqlalchemy import MetaData

ConfigureCallback = Callable[[AlembicConfig], AlembicConfig]


class SQLAlchemyObject(Protocol):
    """The ``db`` given to :class:`Migrate`: a Flask-SQLAlchemy object, 2.x or 3.x (see
    :mod:`flask_migrate.runtime.binds` for what else is read of each), whose models' tables
    are in ``db.metadata``."""

    @property
    def metadata(self) -> MetaData: ...


class MigrateRecord:
    """What ``app.extensions['migrate']`` holds for one application.

    :param migrate: the :class:`Migrate` instance.
    :param db: the Flask-SQLAlchemy object.
    :param configure_args: extra keyword arguments for ``EnvironmentContext.configure()``
        (any of Alembic's, and whatever an env.py reads of them: values of any type).
    """

    def __init__(
        self, migrate: Migrate, db: SQLAlchemyObject | None, **configure_args: Any
    ) -> None:
        self.migrate = migrate
        self.db = db
        self.directory = migrate.directory
        self.configure_args = configure_args

    @property
    def metadata(self) -> MetaData:
        """The models' ``MetaData`` (of the default database, with Flask-SQLAlchemy 3)."""
        if self.db is None:  # init_app() without a db
            raise AttributeError("'NoneType' object has no attribute 'metadata'")
        return self.db.metadata


class Migrate:
    """Alembic migrations for a Flask-SQLAlchemy application.

    :param app: the application, or None to call :meth:`init_app` later.
    :param db: the Flask-SQLAlchemy object whose models are migrated.
    :param directory: the migrations folder.
    :param command: the name of the ``flask`` command group.
    :param compare_type: let autogenerate detect column type changes.
    :param render_as_batch: write ALTERs in batch mode, which SQLite needs.
    :param kwargs: any other ``EnvironmentContext.configure()`` argument.
    """

    def __init__(
        self,
        app: Flask | None = None,
        db: SQLAlchemyObject | None = None,
        directory: str | os.PathLike[str] = "migrations",
        command: str = "db",
        compare_type: bool = True,
        render_as_batch: bool = True,
        **kwargs: Any,
    ) -> None:
        self.configure_callbacks: list[ConfigureCallback] = []
        self.db = db
        self.command = command
        self.directory = str(directory)
        self.alembic_ctx_kwargs = dict(
            kwargs, compare_type=compare_type, render_as_batch=render_as_batch
        )
        if app is not None and db is not None:
            self.init_app(app, db, directory)

    def init_app(
        self,
        app: Flask,
        db: SQLAlchemyObject | None = None,
        directory: str | os.PathLike[str] | None = None,
        command: str | None = None,
        compare_type: bool | None = None,
        render_as_batch: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Attach to ``app``; arguments given here replace those given to the constructor."""
        self.db = db or self.db
        self.command = command or self.command
        self.directory = str(directory or self.directory)
        self.alembic_ctx_kwargs.update(kwargs)
        if compare_type is not None:
            self.alembic_ctx_kwargs["compare_type"] = compare_type
        if render_as_batch is not None:
            self.alembic_ctx_kwargs["render_as_batch"] = render_as_batch
        if not hasattr(app, "extensions"):
            app.extensions = {}
        app.extensions["migrate"] = MigrateRecord(self, self.db, **self.alembic_ctx_kwargs)
        if hasattr(app, "cli"):
            from .click_cli import build_group

            app.cli.add_command(build_group(self.command), name=self.command)

    def configure(self, f: ConfigureCallback) -> ConfigureCallback:
        """Decorator: ``f(config)`` adjusts the Alembic ``Config`` before every command."""
        self.configure_callbacks.append(f)
        return f

    def call_configure_callbacks(self, config: AlembicConfig) -> AlembicConfig:
        """Pass ``config`` through every ``@configure`` callback, in order."""
        for callback in self.configure_callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: str | os.PathLike[str] | None = None,
        x_arg: Iterable[str] | None = None,
        opts: Iterable[str] | None = None,
    ) -> AlembicConfig:
        """The Alembic ``Config`` the commands use (kept for code written for 2.x-4.x)."""
        from .config import build_config

        config = build_config(
            str(directory or self.directory), x_arg=x_arg,
            autogenerate="autogenerate" in (opts or ()),
        )
        return self.call_configure_callbacks(config)


def current_record() -> MigrateRecord | None:
    """The current application's ``app.extensions['migrate']``, or None (no application
    context, or an application without ``Migrate``)."""
    if not has_app_context():
        return None
    record: MigrateRecord | None = current_app.extensions.get("migrate")
    return record


def require_record() -> MigrateRecord:
    """:func:`current_record`, or a :class:`~flask_migrate.errors.MigrateError` saying how to
    add the extension."""
    record = current_record()
    if record is None:
        raise MigrateError(
            "this application has no Flask-Migrate extension; add 'Migrate(app, db)' or "
            "'migrate.init_app(app, db)' where the app is created"
        )
    return record
