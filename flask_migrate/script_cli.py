"""``MigrateCommand``: the ``manage.py db`` Flask-Script manager, generated from the spec.

Built on first use from ``flask_script`` (Flask-Script 2.0.6, Flask < 2) when it imports, else
from ``flask_script_ng`` (its maintained fork for Flask >= 2.2.4).  Commands are ``Command``
objects with an explicit ``option_list``: Flask-Script's ``Command(func)`` introspects with
``inspect.getargspec``, which Python 3.11 no longer has.

Flask-Script drops a sub-manager's own options, and a subcommand's default overwrites a group
option with the same ``dest``.  So the group-level ``-d/-x`` use ``dest`` names of their own and
travel from :class:`_MigrateManager` to the command in the value Flask-Script passes down its
call chain (see ``Manager.handle``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence

from . import dispatch
from .spec import CommandSpec, Kind, Option, command_specs, group_options

if TYPE_CHECKING:
    from flask import Flask

INSTALL_HINT = (
    "MigrateCommand needs Flask-Script: install Flask-Script-NG for Flask >= 2.2.4 "
    "(pip install Flask-Script-NG) or Flask-Script 2.0.6 for Flask 1.x"
)
_GROUP_PREFIX = "group_"
_HELP = "Perform database migrations with Alembic (Flask-Migrate)."

# Flask-Script's objects and classes have no type information: they are Any to mypy.
_manager: Any = None


def flask_script() -> ModuleType:
    """The installed Flask-Script flavour: ``flask_script`` if it imports, else ``flask_script_ng``."""
    try:
        return importlib.import_module("flask_script")
    except ImportError:
        pass
    try:
        return importlib.import_module("flask_script_ng")
    except ImportError:
        raise ImportError(INSTALL_HINT) from None


@dataclass
class _Invocation:
    """What the ``db`` manager hands its subcommand: the app and the group-level values."""

    app: Flask
    group_values: dict[str, object] = field(default_factory=dict)


def _argparse_kwargs(option: Option) -> tuple[tuple[str, ...], dict[str, object]]:
    parameter = option.parameter
    # argparse formats help with %-interpolation.
    kwargs: dict[str, object] = {"help": option.help.replace("%", "%%")}
    if option.kind is Kind.ARGUMENT:
        return (option.name,), dict(kwargs, nargs="?", default=None, metavar=parameter.metavar)
    if option.kind is Kind.ARGUMENTS:
        return (option.name,), dict(kwargs, nargs="*", default=None, metavar=parameter.metavar)
    kwargs["dest"] = option.name
    if option.kind is Kind.FLAG:
        return parameter.flags, dict(kwargs, action="store_true", default=False)
    kwargs.update(default=None, metavar=parameter.metavar)
    if option.kind is Kind.REPEATED:
        kwargs["action"] = "append"
    return parameter.flags, kwargs


def _build(module: ModuleType) -> Any:
    # Flask-Script's or Flask-Script-NG's classes, whichever is installed.
    command_class: Any = module.Command
    manager_class: Any = module.Manager

    class MigrateCommandBase(command_class):
        """One generated ``manage.py db`` subcommand."""

        # Hand leftover arguments to __call__, which names them: Flask-Script would only say
        # "too many arguments".
        capture_all_args = True

        def __init__(self, spec: CommandSpec) -> None:
            super().__init__()
            self.spec = spec
            self.help = self.__doc__ = spec.help
            self.option_list = [
                module.Option(*args, **kwargs)
                for args, kwargs in map(_argparse_kwargs, spec.options)
            ]

        def __call__(
            self, app: Flask | _Invocation, leftover: Sequence[str] = (), **values: object
        ) -> None:
            if leftover:
                print(
                    f"Error: unrecognized arguments: {' '.join(leftover)} (see "
                    f"'{os.path.basename(sys.argv[0])} db {self.spec.name} --help')",
                    file=sys.stderr,
                )
                raise SystemExit(2)
            invocation = app if isinstance(app, _Invocation) else _Invocation(app)
            with invocation.app.app_context():
                status = dispatch.run(self.spec, values, invocation.group_values)
            if status:
                raise SystemExit(status)

    class MigrateParser(argparse.ArgumentParser):
        """The parser of one subcommand: its ``--help`` ends as click's does."""

        # argparse's own arguments, as Flask-Script passes them.
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("epilog", dispatch.TRACEBACK_HINT)
            super().__init__(*args, **kwargs)

        def parse_known_args(  # type: ignore[override]  # typeshed: generic in the namespace
            self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
        ) -> tuple[argparse.Namespace, list[str]]:
            if args is not None:
                args = _dash_values_attached(self, list(args))
            return super().parse_known_args(args, namespace)

    class MigrateManager(manager_class):
        """The ``db`` sub-manager, which keeps its own ``-d/-x`` for its subcommands."""

        def __call__(self, app: Flask | None = None, **values: object) -> _Invocation:
            group_values = {
                name[len(_GROUP_PREFIX):]: value
                for name, value in values.items()
                if name.startswith(_GROUP_PREFIX)
            }
            return _Invocation(super().__call__(app), group_values)

    manager = MigrateManager(help=_HELP, description=f"{_HELP} {dispatch.TRACEBACK_HINT}")
    manager.subparser_kwargs["parser_class"] = MigrateParser
    for option in group_options():
        args, kwargs = _argparse_kwargs(option)
        kwargs["dest"] = _GROUP_PREFIX + option.name
        manager.add_option(*args, **kwargs)
    for spec in command_specs():
        manager.add_command(spec.name, MigrateCommandBase(spec))
    return manager


def _dash_values_attached(parser: argparse.ArgumentParser, args: list[str]) -> list[str]:
    """``-r -3:`` as ``-r=-3:``: argparse takes a value that starts with '-' for an option.

    click accepts such a value after an option that takes one; so do we, for parity.
    """
    takes_value = {
        flag
        for action in parser._actions
        if action.option_strings and action.nargs != 0
        for flag in action.option_strings
    }
    known = {flag for action in parser._actions for flag in action.option_strings}
    joined: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        following = args[index + 1] if index + 1 < len(args) else None
        if (
            arg in takes_value
            and following is not None
            and following.startswith("-")
            and following not in known
            and following != "--"
        ):
            joined.append(f"{arg}={following}")
            index += 2
            continue
        joined.append(arg)
        if arg == "--":
            joined.extend(args[index + 1:])
            break
        index += 1
    return joined


def migrate_command() -> Any:
    """The ``MigrateCommand`` manager (a Flask-Script ``Manager``), built on first use."""
    global _manager
    if _manager is None:
        _manager = _build(flask_script())
    return _manager
