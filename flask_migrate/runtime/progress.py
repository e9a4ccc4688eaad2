"""What a migration run tells as it goes: each revision's duration, then a summary.

:class:`Progress` logs ``Applying B (message) ...`` as a revision starts, ``Applied B in
0.12 s`` when it is done, and, once the run is over (committed), one line with the count and
the total time (``Reverting``/``Reverted``/``Downgraded`` for a downgrade).  Everything goes to
the ``flask_migrate`` logger, which the command line shows on stderr and an application's own
logging configuration governs otherwise.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Collection, Iterator, Mapping

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo, MigrationStep

    from .._alembic import StepsFunction

logger = logging.getLogger("flask_migrate")


def _seconds(value: float) -> str:
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"


class Progress:
    """Times the steps of one database's run (hook it in with :meth:`wrap` and :meth:`applied`)."""

    def __init__(self, label: str, multidb: bool) -> None:
        self.where = f"the {label} database" if multidb else "the database"
        self.count = 0
        self.kind = ""
        self.first: str | None = None
        self.last: str | None = None
        self.started = time.perf_counter()
        self.step_started = self.started
        #: "revision X (message)" while a revision runs, for the errors of a run that stops.
        self.current: str | None = None

    def wrap(self, fn: StepsFunction) -> StepsFunction:
        """Alembic's step generator, noting when each step starts."""

        def steps(heads: tuple[str, ...], context: MigrationContext) -> Iterator[MigrationStep]:
            if self.first is None:  # not a retry (see :mod:`.timeouts`)
                self.started = time.perf_counter()
                self.first = ",".join(heads) if heads else "base"
            self.step_started = time.perf_counter()
            for step in fn(heads, context):
                self._starting(step)
                self.step_started = time.perf_counter()
                yield step

        return steps

    def _starting(self, step: MigrationStep) -> None:
        """Say which revision starts, so that a long one is not silence."""
        script = getattr(step, "revision", None)  # Alembic's RevisionStep; stamps have none
        revision = getattr(script, "revision", None)
        if not isinstance(revision, str):
            return
        verb = "Applying" if step.is_upgrade else "Reverting"
        doc = (getattr(script, "doc", None) or "").strip().splitlines()
        self.current = f"revision {revision}" + (f" ({doc[0]})" if doc else "")
        logger.info("%s %s%s ...", verb, revision, f" ({doc[0]})" if doc else "")

    def applied(
        self, *, ctx: MigrationContext, step: MigrationInfo, heads: Collection[str],
        run_args: Mapping[str, object],
    ) -> None:
        """Alembic's ``on_version_apply`` callback."""
        duration = time.perf_counter() - self.step_started
        self.current = None
        if step.is_stamp:
            self.kind = "stamp"
            return
        self.kind = "upgrade" if step.is_upgrade else "downgrade"
        done = "Applied" if step.is_upgrade else "Reverted"
        logger.info("%s %s in %s", done, step.up_revision_id, _seconds(duration))
        self.count += 1
        self.last = ",".join(sorted(heads)) if heads else "base"

    def summary(self) -> None:
        """The closing line, once the run's work is committed."""
        if not self.count:
            return
        total = time.perf_counter() - self.started
        verb = "Upgraded" if self.kind == "upgrade" else "Downgraded"
        plural = "revision" if self.count == 1 else "revisions"
        logger.info(
            "%s %s from %s to %s: %d %s in %s",
            verb, self.where, self.first, self.last, self.count, plural, _seconds(total),
        )
