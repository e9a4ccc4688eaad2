"""Alembic configuration for a Flask application's migrations folder.

:class:`Config` is an Alembic ``Config`` that knows where this package's templates live (or a
custom template folder).  :func:`build_config` makes the one ``Config`` every command runs with:
the folder, the ``-x`` values and the objects env.py needs, passed through ``Config.attributes``.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Iterable

from alembic.config import Config as AlembicConfig

#: The folder holding the stock templates (``flask``, ``flask-multidb``, ...).
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

#: Keys of ``Config.attributes`` read by :mod:`flask_migrate.runtime`.
ATTR_AUTOGENERATE = "flask_migrate.autogenerate"
ATTR_EXTENSION = "flask_migrate.extension"


class Config(AlembicConfig):
    """An Alembic ``Config`` whose templates are Flask-Migrate's, or those of ``template_directory``.

    :param template_directory: a folder of custom templates to use instead of the stock ones.
    """

    def __init__(self, *args: Any, template_directory: str | None = None, **kwargs: Any) -> None:
        self.template_directory = template_directory
        super().__init__(*args, **kwargs)

    def get_template_directory(self) -> str:
        return self.template_directory or TEMPLATES_DIR


def build_config(
    directory: str,
    *,
    x_arg: Iterable[str] | None = None,
    autogenerate: bool = False,
    extension: Any = None,
) -> Config:
    """Make the ``Config`` for the migrations folder ``directory``.

    :param x_arg: ``-x`` values, readable in env.py with ``context.get_x_argument()``.
    :param autogenerate: whether this run compares the models with the database.
    :param extension: the application's ``app.extensions['migrate']`` record, if any.
    """
    config = Config(os.path.join(directory, "alembic.ini"))
    config.set_main_option("script_location", directory)
    # Alembic reads -x values from ``cmd_opts.x``; env.py files written for Flask-Migrate 2.x-4.x
    # also read ``cmd_opts.autogenerate`` to drop empty revisions.  Our own runtime reads
    # ``Config.attributes`` instead.
    config.cmd_opts = argparse.Namespace(x=list(x_arg or ()), autogenerate=autogenerate)
    config.attributes[ATTR_AUTOGENERATE] = autogenerate
    config.attributes[ATTR_EXTENSION] = extension
    return config
