"""The ``flask db`` command group, generated from :mod:`flask_migrate.spec`.

No option is declared here: each ``click`` parameter is built from the spec's table.  Values
given before the command name (``flask db -d DIR upgrade``) are read from the group's context by
the subcommand, which works the same on click 7 and click 8 and needs no ``flask.g``.
"""
from __future__ import annotations

import re
from typing import Any

import click
from flask.cli import with_appcontext

from . import dispatch
from .spec import CommandSpec, Kind, Option, command_specs, group_options

_GROUP_HELP = (
    f"Perform database migrations with Alembic (Flask-Migrate). {dispatch.TRACEBACK_HINT}"
)


# Click >= 8.5 documents arguments itself ("Positional arguments"); older releases (click 7 on
# the legacy stack) do not, so there we add that section, to match argparse's.
_CLICK_HAS_ARGUMENT_HELP = hasattr(click.Command, "format_arguments")


class _Argument(click.Argument):
    """A positional argument that carries a help text on every click version."""

    def __init__(self, *args: Any, help: str = "", **kwargs: Any) -> None:
        if _CLICK_HAS_ARGUMENT_HELP:
            kwargs["help"] = help
        super().__init__(*args, **kwargs)
        self.help = help


_RELATIVE_REVISION = re.compile(r"-\d+")


class _Command(click.Command):
    """A command whose ``--help`` lists its positional arguments too, as argparse does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # A relative revision such as -2 looks like an option to click (argparse takes it as
        # the positional argument): move it behind "--" so it reaches REVISION.
        if any(isinstance(param, _Argument) for param in self.params):
            args = _relative_revisions_last(self, args)
        return super().parse_args(ctx, args)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not _CLICK_HAS_ARGUMENT_HELP:
            rows = [
                (param.human_readable_name, param.help or "")
                for param in self.get_params(ctx)
                if isinstance(param, _Argument)
            ]
            if rows:
                with formatter.section("Positional arguments"):
                    formatter.write_dl(rows)
        super().format_options(ctx, formatter)


def _relative_revisions_last(command: click.Command, args: list[str]) -> list[str]:
    takes_value = {
        flag
        for param in command.params
        if isinstance(param, click.Option) and not param.is_flag
        for flag in param.opts
    }
    kept: list[str] = []
    relative: list[str] = []
    for index, arg in enumerate(args):
        if arg == "--":
            return kept + ["--"] + relative + args[index + 1:]
        if _RELATIVE_REVISION.fullmatch(arg) and not (kept and kept[-1] in takes_value):
            relative.append(arg)
        else:
            kept.append(arg)
    return kept + ["--"] + relative if relative else kept


def _parameter(option: Option) -> click.Parameter:
    parameter = option.parameter
    # Arguments get click's own metavar, which brackets an optional one as argparse does.
    if option.kind is Kind.ARGUMENT:
        return _Argument([option.name], required=False, help=option.help)
    if option.kind is Kind.ARGUMENTS:
        return _Argument([option.name], nargs=-1, help=option.help)
    declarations = list(parameter.flags) + [option.name]
    if option.kind is Kind.FLAG:
        return click.Option(declarations, is_flag=True, default=False, help=option.help)
    return click.Option(
        declarations, metavar=parameter.metavar, help=option.help, default=None,
        multiple=option.kind is Kind.REPEATED,
    )


def _command(spec: CommandSpec) -> click.Command:
    def callback(**values: Any) -> None:
        ctx = click.get_current_context()
        group_values = ctx.parent.params if ctx.parent is not None else {}
        status = dispatch.run(spec, values, group_values)
        if status:
            ctx.exit(status)

    return _Command(
        spec.name,
        callback=with_appcontext(callback),
        params=[_parameter(option) for option in spec.options],
        help=spec.help,
        short_help=spec.help.split(". ")[0].rstrip("."),
        epilog=dispatch.TRACEBACK_HINT,
    )


def build_group(name: str = "db") -> click.Group:
    """A new ``flask db`` group (under ``name``) carrying every command of the spec."""
    group = click.Group(
        name,
        help=_GROUP_HELP,
        params=[_parameter(option) for option in group_options()],
        # The values stay in this group's context, where each subcommand reads them.
        callback=lambda **values: None,
    )
    for spec in command_specs():
        group.add_command(_command(spec))
    return group
