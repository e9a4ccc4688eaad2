"""Alembic configuration for a Flask application's migrations folder.

:class:`Config` is an Alembic ``Config`` that knows where this package's templates live (or a
custom template folder).  :func:`build_config` makes the one ``Config`` every command runs with:
the folder, the ``-x`` values and the objects env.py needs, passed through ``Config.attributes``.

This module imports Alembic and :mod:`flask_migrate.errors` only: everything else in the
package may import it.
"""
from __future__ import annotations

import argparse
import configparser
import os
import sys
from typing import Any, Iterable

from alembic.config import Config as AlembicConfig

from .errors import MigrateError

#: The folder holding the stock templates (``flask``, ``flask-multidb``, ...).
TEMPLATES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")

#: Keys of ``Config.attributes`` read by :mod:`flask_migrate.runtime`.
ATTR_AUTOGENERATE = "flask_migrate.autogenerate"
#: The command's :class:`flask_migrate.folder.MigrationsFolder` (read once per command).
ATTR_FOLDER = "flask_migrate.folder"
#: The name of the command being run (``"upgrade"``, ...); the runtime locks only for writers.
ATTR_COMMAND = "flask_migrate.command"
#: The names of the databases to act on (``--bind``; ``"default"`` is the default database).
ATTR_BINDS = "flask_migrate.binds"
#: Set by the runtime while it visits a database: its name and masked URL.
ATTR_DATABASE = "flask_migrate.database"
#: Set to True by ``db test`` (:mod:`flask_migrate.testing`): the databases are throwaway ones
#: that nothing else uses, so a commit per revision buys no durability there.
ATTR_THROWAWAY = "flask_migrate.throwaway"


class Config(AlembicConfig):
    """An Alembic ``Config`` whose templates are Flask-Migrate's, or those of ``template_directory``.

    :param template_directory: a folder of custom templates to use instead of the stock ones.
    """

    # The rest goes to Alembic's Config, whose arguments differ between its versions.
    def __init__(self, *args: Any, template_directory: str | None = None, **kwargs: Any) -> None:
        self.template_directory = template_directory
        super().__init__(*args, **kwargs)

    def get_template_directory(self) -> str:
        return self.template_directory or TEMPLATES_DIR

    def migrations_folder(self) -> str:
        """The migrations folder (``script_location``), as :func:`build_config` set it."""
        return self.get_main_option("script_location") or ""


def build_config(
    directory: str,
    *,
    x_arg: Iterable[str] | None = None,
    autogenerate: bool = False,
    command: str | None = None,
) -> Config:
    """Make the ``Config`` for the migrations folder ``directory``.

    :param x_arg: ``-x`` values, readable in env.py with ``context.get_x_argument()``.
    :param autogenerate: whether this run compares the models with the database.
    :param command: the command being run, for the runtime (see ``ATTR_COMMAND``).
    """
    # Alembic's default stream is the sys.stdout it saw at import; use today's, so that
    # redirect_stdout, capsys and Flask's test runner capture the output.
    ini = os.path.join(directory, "alembic.ini")
    config = Config(ini, stdout=sys.stdout)
    try:
        parser = config.file_config  # parsed once, here, so that a broken file is named as such
        # Alembic reads the [alembic] section's values on demand, deep in any command; read
        # them all now, so that a bad %-substitution is named here too.  (The logging sections
        # hold %(name)s formats that only logging's fileConfig() reads, raw.)
        section = config.config_ini_section
        for option in parser.options(section) if parser.has_section(section) else ():
            parser.get(section, option)
    except UnicodeDecodeError as error:
        raise MigrateError(
            f"cannot read {ini}: it is not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at offset {error.start}); fix or restore the file"
        )
    except configparser.Error as error:
        raise MigrateError(f"cannot read {ini}: {_parse_problem(error)}; fix or restore the file")
    config.set_main_option("script_location", directory)
    # Alembic reads -x values from ``cmd_opts.x``; env.py files written for Flask-Migrate 2.x-4.x
    # also read ``cmd_opts.autogenerate`` to drop empty revisions.  Our own runtime reads
    # ``Config.attributes`` instead.
    config.cmd_opts = argparse.Namespace(x=list(x_arg or ()), autogenerate=autogenerate)
    config.attributes[ATTR_AUTOGENERATE] = autogenerate
    config.attributes[ATTR_COMMAND] = command
    return config


def _parse_problem(error: configparser.Error) -> str:
    """What is wrong in a configuration file, without configparser's repeated file name."""
    if isinstance(error, (configparser.DuplicateOptionError, configparser.DuplicateSectionError)):
        if isinstance(error, configparser.DuplicateOptionError):
            what = f"option '{error.option}' appears twice in section [{error.section}]"
        else:
            what = f"section [{error.section}] appears twice"
        return f"line {error.lineno}: {what}" if error.lineno else what
    if isinstance(error, configparser.MissingSectionHeaderError):
        return f"line {error.lineno}: text before the first [section] header"
    if isinstance(error, configparser.InterpolationError):
        # E.g. '100%' or '%(nope)s': configparser's message repeats the whole raw value.
        return (
            f"option '{error.option}' of section [{error.section}] has a bad %-substitution "
            "(write a literal % as %%)"
        )
    if isinstance(error, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _ in error.errors)
        return f"cannot parse line {lines}" if lines else "cannot parse it"
    return error.message if hasattr(error, "message") else str(error)
