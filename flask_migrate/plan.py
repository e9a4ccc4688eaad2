"""Where each database stands and what a command would do to it, found without changing it.

:func:`collect` runs the folder's env.py (so every database of a multi-database folder is
visited, as by ``current``) with a step function that records the revisions a command would
apply, in Alembic's own order, and returns none of them to run.  ``status`` and the ``--plan``
of ``upgrade`` and ``downgrade`` are built on it; their reports (:class:`StatusReport`,
:class:`Plan`) are data, which the command line renders.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence, TextIO, overload

from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

from .config import ATTR_DATABASE, Config
from .runtime.marks import Interrupted, read

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, RevisionStep

    from ._alembic import PlannedStep

#: Exit status of ``status`` when some database has revisions to apply.
PENDING_EXIT_CODE = 3


@dataclass(frozen=True)
class Step:
    """One revision a command would apply (``upgrade``) or revert (``downgrade``)."""

    revision: str
    message: str
    upgrade: bool


@dataclass
class DatabaseState:
    """One database: where it is, where the folder's history ends, and the steps in between."""

    name: str
    url: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    steps: list[Step] = field(default_factory=list)
    #: A revision an earlier run started and did not finish (see :mod:`.runtime.marks`).
    interrupted: Interrupted | None = None

    @property
    def up_to_date(self) -> bool:
        return not self.steps and self.interrupted is None


class _States(Sequence[DatabaseState]):
    """The states of every database visited, in order (``report[0]`` is the first)."""

    databases: tuple[DatabaseState, ...]

    @overload
    def __getitem__(self, index: int) -> DatabaseState: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[DatabaseState]: ...

    def __getitem__(self, index: int | slice) -> DatabaseState | Sequence[DatabaseState]:
        return self.databases[index]

    def __len__(self) -> int:
        return len(self.databases)


@dataclass(frozen=True)
class StatusReport(_States):
    """What ``status`` found: each database's revision, its heads and what is pending."""

    databases: tuple[DatabaseState, ...]

    @property
    def up_to_date(self) -> bool:
        return all(state.up_to_date for state in self.databases)

    @property
    def exit_code(self) -> int:
        """0 when every database is up to date, 3 (:data:`PENDING_EXIT_CODE`) otherwise."""
        return 0 if self.up_to_date else PENDING_EXIT_CODE

    @property
    def error(self) -> None:
        return None

    def render(self, out: TextIO) -> None:
        """One block per database (:func:`print_status`)."""
        print_status(self, out)


class Succeeded:
    """The outcome half of a :class:`~flask_migrate.dispatch.Result` whose command succeeds
    whatever it reports: exit status 0, no ``Error:`` line (``--plan``, ``migrate``)."""

    @property
    def exit_code(self) -> int:
        return 0

    @property
    def error(self) -> None:
        return None


@dataclass(frozen=True)
class Plan(Succeeded, _States):
    """The ``--plan`` of an upgrade (``upgrade=True``) or a downgrade: the steps per database,
    none of them run."""

    databases: tuple[DatabaseState, ...]
    upgrade: bool

    def render(self, out: TextIO) -> None:
        """The steps per database (:func:`print_plan`)."""
        print_plan(self, out)


#: ``steps(script, current_heads)``: the revisions a command would run (see :mod:`._alembic`).
StepsFunction = Callable[[ScriptDirectory, tuple[str, ...]], Iterable["PlannedStep"]]


def _step(migration: PlannedStep) -> Step:
    revision = migration.revision
    message = (revision.doc or "").strip().splitlines()
    return Step(revision.revision, message[0] if message else "", bool(migration.is_upgrade))


def _database(config: Config) -> tuple[str, str]:
    """The name and masked URL of the database env.py is visiting (set by the run's guard,
    :mod:`flask_migrate.runtime.guard`, whichever env.py it is)."""
    database: tuple[str, str] | None = config.attributes.get(ATTR_DATABASE)
    return database or ("default", "?")


def collect(config: Config, steps: StepsFunction) -> tuple[DatabaseState, ...]:
    """Visit every database through env.py and record ``steps(script, current_heads)``."""
    script = ScriptDirectory.from_config(config)
    report: list[DatabaseState] = []

    def record(heads: tuple[str, ...], context: MigrationContext) -> list[RevisionStep]:
        name, url = _database(config)
        current = tuple(heads or ())
        interrupted = None
        if context.connection is not None and not context.as_sql:
            interrupted = read(
                context.connection, context.version_table, context.version_table_schema
            )
        report.append(DatabaseState(
            name, url, current, tuple(script.get_heads()),
            [_step(migration) for migration in steps(script, current)], interrupted,
        ))
        return []

    with EnvironmentContext(config, script, fn=record, dont_mutate=True):
        script.run_env()
    return tuple(report)


def _revisions(ids: tuple[str, ...]) -> str:
    return ", ".join(ids) if ids else "base (empty)"


def print_status(report: StatusReport, out: TextIO) -> None:
    """The ``status`` report: one block per database."""
    for state in report:
        print(f"Database {state.name} ({state.url})", file=out)
        print(f"  current: {_revisions(state.current)}", file=out)
        print(f"  heads:   {_revisions(state.heads)}", file=out)
        if state.interrupted is not None:
            print(f"  interrupted: {state.interrupted.revision} did not finish "
                  f"({state.interrupted.describe()}); part of it may be in the database, "
                  "'db upgrade' says how to recover", file=out)
        if state.up_to_date:
            print("  status:  up to date", file=out)
            continue
        if not state.steps:
            print("  status:  not up to date: a revision did not finish", file=out)
            continue
        count = len(state.steps)
        print(f"  status:  {count} revision{'s' if count != 1 else ''} to apply, in order:",
              file=out)
        _print_steps(state.steps, out)


def print_plan(report: Plan, out: TextIO) -> None:
    """The ``--plan`` of an upgrade or downgrade: the steps per database, nothing run."""
    verb = "apply" if report.upgrade else "revert"
    for state in report:
        if not state.steps:
            print(f"Database {state.name}: nothing to {verb} (at {_revisions(state.current)})",
                  file=out)
            continue
        count = len(state.steps)
        print(f"Database {state.name}: {count} revision{'s' if count != 1 else ''} to "
              f"{verb}, in order, from {_revisions(state.current)}:", file=out)
        _print_steps(state.steps, out)


def _print_steps(steps: list[Step], out: TextIO) -> None:
    for step in steps:
        sign = "+" if step.upgrade else "-"
        print(f"    {sign} {step.revision}  {step.message}".rstrip(), file=out)
