"""The one declaration of every command and option, from which both front-ends are built.

``PARAMETERS`` says, once, how each parameter of the Python API appears on the command line.
``COMMANDS`` lists the API functions in the order ``--help`` shows them.  Defaults are never
written here: they are read from each function's signature, and a command's help is the first
paragraph of its docstring.  :func:`command_specs` fails loudly when an API parameter has no
entry, so a new parameter cannot silently miss a front-end.

Both ``flask db`` (:mod:`flask_migrate.click_cli`) and ``manage.py db``
(:mod:`flask_migrate.script_cli`) are generated from what this module returns, so they cannot
drift apart.
"""
from __future__ import annotations

import enum
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

from . import commands


class Kind(enum.Enum):
    """How a parameter is given on the command line."""

    VALUE = "value"          # --option VALUE
    FLAG = "flag"            # --flag (a bool, False by default)
    REPEATED = "repeated"    # -x A -x B, collected into a tuple
    ARGUMENT = "argument"    # one optional positional argument
    ARGUMENTS = "arguments"  # any number of positional arguments


@dataclass(frozen=True)
class Parameter:
    """How one API parameter appears on the command line."""

    kind: Kind
    help: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None


PARAMETERS: dict[str, Parameter] = {
    "directory": Parameter(
        Kind.VALUE, "Migrations folder (default: the app's Migrate(directory=...), usually "
        "'migrations'; or $FLASK_DB_DIRECTORY).", ("-d", "--directory"), "DIR"),
    "x_arg": Parameter(
        Kind.REPEATED, "Extra argument for env.py, read with context.get_x_argument(); "
        "repeatable.", ("-x", "--x-arg"), "ARG"),
    "multidb": Parameter(
        Kind.FLAG, "Track the default database and every bind (same as --template "
        "flask-multidb).", ("--multidb",)),
    "template": Parameter(
        Kind.VALUE, "Template: a name from 'list-templates' or the path of a template folder "
        "(default: flask, or flask-multidb with --multidb).", ("-t", "--template"), "NAME"),
    "package": Parameter(
        Kind.FLAG, "Write __init__.py files so the folder is a Python package.", ("--package",)),
    "message": Parameter(Kind.VALUE, "Revision message.", ("-m", "--message"), "TEXT"),
    "autogenerate": Parameter(
        Kind.FLAG, "Fill the revision by comparing the models with the database.",
        ("--autogenerate",)),
    "sql": Parameter(
        Kind.FLAG, "Write SQL to standard output instead of touching the database (offline "
        "mode).", ("--sql",)),
    "head": Parameter(
        Kind.VALUE, "Head revision, or BRANCH@head, the new revision follows.", ("--head",),
        "REV"),
    "splice": Parameter(
        Kind.FLAG, "Allow a non-head revision as --head, starting a branch.", ("--splice",)),
    "branch_label": Parameter(
        Kind.VALUE, "Label for the branch this revision starts.", ("--branch-label",), "LABEL"),
    "version_path": Parameter(
        Kind.VALUE, "Folder in which to write the revision file.", ("--version-path",), "PATH"),
    "rev_id": Parameter(
        Kind.VALUE, "Revision id to use instead of a generated one.", ("--rev-id",), "ID"),
    "revision": Parameter(Kind.ARGUMENT, "Revision identifier.", metavar="REVISION"),
    "revisions": Parameter(
        Kind.ARGUMENTS, "Revisions to merge, or 'heads' for every head.", metavar="REVISIONS"),
    "tag": Parameter(
        Kind.VALUE, "Tag for env.py, read with context.get_tag_argument().", ("--tag",), "TAG"),
    "rev_range": Parameter(
        Kind.VALUE, "Range of revisions, as [start]:[end].", ("-r", "--rev-range"), "RANGE"),
    "verbose": Parameter(Kind.FLAG, "Show each revision's details.", ("-v", "--verbose")),
    "indicate_current": Parameter(
        Kind.FLAG, "Mark the database's current revision.", ("-i", "--indicate-current")),
    "resolve_dependencies": Parameter(
        Kind.FLAG, "Treat dependencies (depends_on) as down revisions.",
        ("--resolve-dependencies",)),
    "bind": Parameter(
        Kind.REPEATED, "Only this database of a multi-database folder ('default' for the "
        "default one); repeatable.", ("--bind",), "NAME"),
    "plan": Parameter(
        Kind.FLAG, "Print the revisions this would run, in order, and run none.", ("--plan",)),
    "table_lock_timeout": Parameter(
        Kind.VALUE, "PostgreSQL, MySQL/MariaDB: seconds a statement may wait for a lock the "
        "application holds before its revision is rolled back and tried again (default 5, or "
        "$FLASK_MIGRATE_TABLE_LOCK_TIMEOUT; 0: no limit).", ("--table-lock-timeout",), "SECONDS"),
    "statement_timeout": Parameter(
        Kind.VALUE, "PostgreSQL: seconds a statement may run (default no limit, or "
        "$FLASK_MIGRATE_STATEMENT_TIMEOUT).", ("--statement-timeout",), "SECONDS"),
    "lock_retries": Parameter(
        Kind.VALUE, "How many times a revision that waited too long for a lock is tried again "
        "(default 5, or $FLASK_MIGRATE_LOCK_RETRIES).", ("--lock-retries",), "N"),
    "purge": Parameter(
        Kind.FLAG, "Empty the version table first, even of unknown revisions.", ("--purge",)),
    "fix": Parameter(
        Kind.FLAG, "Rewrite env.py and script.py.mako to the current template (old files kept "
        "as backups, diff shown; versions/ untouched).", ("--fix",)),
    "dialect": Parameter(
        Kind.VALUE, "Check for this kind of database (postgresql, mysql, mariadb, sqlite) "
        "instead of the one of each database's URL.", ("--dialect",), "NAME"),
    "database": Parameter(
        Kind.VALUE, "The URL of an empty database to run the tests on, instead of a "
        "throwaway one (one-database applications).", ("--database",), "URL"),
    "stamp_binds": Parameter(
        Kind.FLAG, "Record the head revision in every bind's database now, instead of at the "
        "next 'upgrade'.", ("--stamp-binds",)),
}

#: Parameters that may also be given before the command name (``flask db -d DIR upgrade``).
GROUP_PARAMETERS = ("directory", "x_arg")

#: Extra help for a parameter of one command, appended to the general text.
_COMMAND_HELP: dict[tuple[str, str], str] = {
    ("downgrade", "revision"): "-1 is one step down; with --sql the default is head:-1.",
    ("upgrade", "revision"): "With --sql, FROM:TO is accepted too.",
    ("history", "rev_range"): "Default: every revision.",
    ("lint", "rev_range"): "E.g. heads~2: (the last three) or base:head. Default: every "
    "revision.",
}

#: What the command line says of the databases when Ctrl-C or SIGTERM stopped a command (in
#: the ``Error:`` line): whatever was not committed has been rolled back by then.
AFTER_STOP = "run 'db status' to see where each database is"
#: The same, for the commands that never touch the application's databases.
_AFTER_STOP: dict[str, str] = {
    "test": "the throwaway databases db test made have been removed",
}

#: The API functions, in the order ``--help`` lists them.
COMMANDS: tuple[Callable[..., Any], ...] = (
    commands.list_templates,
    commands.init,
    commands.revision,
    commands.migrate,
    commands.edit,
    commands.merge,
    commands.upgrade,
    commands.downgrade,
    commands.show,
    commands.history,
    commands.heads,
    commands.branches,
    commands.current,
    commands.status,
    commands.stamp,
    commands.check,
    commands.lint,
    commands.test,
    commands.doctor,
    commands.convert_multidb,
)


@dataclass(frozen=True)
class Option:
    """One parameter of one command, with the default read from the API signature."""

    name: str
    parameter: Parameter
    default: Any
    help: str
    #: False for an option the command line takes for uniformity only (``-d`` of a command
    #: that reads no migrations folder): it is parsed, and not passed to the API function.
    api: bool = True

    @property
    def kind(self) -> Kind:
        return self.parameter.kind


@dataclass(frozen=True)
class CommandSpec:
    """One command: its name on the command line, its API function and its options."""

    name: str
    function: Callable[..., Any]
    help: str
    options: tuple[Option, ...]
    #: The sentence of the ``Error:`` line when Ctrl-C stops the command.
    interrupted: str = f"interrupted; {AFTER_STOP}"
    #: The same when SIGTERM (a container being stopped) does.
    terminated: str = (
        f"terminated (SIGTERM); what was not committed has been rolled back: {AFTER_STOP}"
    )

    def accepts(self, name: str) -> bool:
        """The API function takes the parameter ``name``: the command line passes its value on.

        Not so for an option taken for uniformity only (see :attr:`Option.api`).
        """
        return any(option.name == name and option.api for option in self.options)


def _first_paragraph(function: Callable[..., Any]) -> str:
    doc = inspect.getdoc(function) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    # Docstrings are reStructuredText; a terminal shows ``literal`` better as 'literal'.
    return re.sub(r"``(.+?)``", r"'\1'", text)


def _option(command: str, name: str, default: Any) -> Option:
    try:
        parameter = PARAMETERS[name]
    except KeyError:
        raise LookupError(
            f"{command}(): parameter {name!r} has no entry in flask_migrate.spec.PARAMETERS"
        ) from None
    text = parameter.help
    extra = _COMMAND_HELP.get((command, name))
    if extra:
        text = f"{text} {extra}"
    if parameter.kind is Kind.FLAG:
        if default is not False:
            raise ValueError(f"{command}(): flag {name!r} must default to False")
    elif parameter.kind in (Kind.VALUE, Kind.ARGUMENT) and default not in (None, ""):
        text = f"{text} Default: {default}."
    return Option(name, parameter, default, text)


#: What ``-d`` says on a command whose API function has no ``directory`` parameter.
_UNUSED_DIRECTORY_HELP = "Accepted as on every command; this one reads no migrations folder."


def command_spec(function: Callable[..., Any]) -> CommandSpec:
    """Describe one API function as a command (``list_templates`` -> ``list-templates``).

    Every command takes ``-d`` on the command line (a script may pass it to each); where the
    function has no ``directory`` parameter, the option is parsed and not passed on.
    """
    name = function.__name__.replace("_", "-")
    parameters = inspect.signature(function).parameters
    options = tuple(
        _option(function.__name__, parameter.name, parameter.default)
        for parameter in parameters.values()
    )
    if "directory" not in parameters:
        unused = Option("directory", PARAMETERS["directory"], None, _UNUSED_DIRECTORY_HELP, False)
        options = (unused, *options)
    after = _AFTER_STOP.get(function.__name__)
    if after is None:
        return CommandSpec(name, function, _first_paragraph(function), options)
    return CommandSpec(name, function, _first_paragraph(function), options,
                       interrupted=f"interrupted; {after}",
                       terminated=f"terminated (SIGTERM); {after}")


def command_specs() -> tuple[CommandSpec, ...]:
    """Every command, in ``--help`` order."""
    return tuple(command_spec(function) for function in COMMANDS)


def group_options() -> tuple[Option, ...]:
    """The options accepted before the command name, as in ``flask db -d DIR -x A upgrade``."""
    return tuple(_option("db", name, None) for name in GROUP_PARAMETERS)
