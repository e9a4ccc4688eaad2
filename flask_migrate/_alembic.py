"""Every use of Alembic's private API, in one place, each with the reason it is needed.

Alembic (1.19 and 1.20 are tested) documents no way to:

- run code around whatever env.py does, which is how the migration lock, real SQLite
  transactions, progress and the heads memo hold for every env.py, not only ours
  (:func:`install_environment_hooks`);
- read the options a command gave its ``EnvironmentContext`` (the step function ``fn`` and the
  destination of an upgrade) (:func:`context_options`);
- list the revisions an upgrade or a downgrade would run, without running them, which
  ``status`` and ``--plan`` print (:func:`upgrade_steps`, :func:`downgrade_steps`);
- list the folders revision files live in, which the heads memo hashes
  (:func:`version_locations`).

When Alembic changes one of these, this module is the one to mend.  Nothing else in the
package touches a name of Alembic's that starts with an underscore.
"""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Iterable, Sequence

from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory

#: ``hook(environment, original, kwargs)`` runs in place of ``EnvironmentContext.configure``.
ConfigureHook = Callable[[EnvironmentContext, Callable[..., None], dict], None]
#: ``hook(environment, original, kwargs)`` runs in place of ``EnvironmentContext.run_migrations``.
RunHook = Callable[[EnvironmentContext, Callable[..., None], dict], None]
#: ``hook(environment)`` runs when a command's ``with EnvironmentContext(...)`` block (the run
#: of env.py) ends without an exception.
EndHook = Callable[[EnvironmentContext], None]

_installed: dict[str, Any] = {}
_install_lock = threading.Lock()


def install_environment_hooks(
    configure: ConfigureHook, run_migrations: RunHook, end: EndHook
) -> None:
    """Route every ``context.configure()`` and ``context.run_migrations()`` through the hooks,
    and tell ``end`` when a run of env.py is over.

    env.py calls both through the ``alembic.context`` module, which forwards to the
    ``EnvironmentContext`` the command made; Alembic offers no event for either, so the class's
    two methods are wrapped (and ``__exit__``, to know when env.py is done).  The wrappers are
    installed once per process and stay: each hook decides from ``environment.config`` whether
    the run is one of ours, and otherwise calls straight through, so Alembic used directly (or
    by another tool in the same process) behaves exactly as without this package.
    """
    with _install_lock:
        if _installed:
            return
        original_configure = EnvironmentContext.configure
        original_run = EnvironmentContext.run_migrations
        original_exit = EnvironmentContext.__exit__

        @functools.wraps(original_configure)
        def configure_wrapper(self: EnvironmentContext, *args: Any, **kwargs: Any) -> None:
            if args:  # positional connection/url, as Alembic's signature allows
                names = ("connection", "url", "dialect_name", "dialect_opts")
                kwargs.update(zip(names, args))
            configure(self, functools.partial(original_configure, self), kwargs)

        @functools.wraps(original_run)
        def run_wrapper(self: EnvironmentContext, **kwargs: Any) -> None:
            run_migrations(self, functools.partial(original_run, self), kwargs)

        @functools.wraps(original_exit)
        def exit_wrapper(self: EnvironmentContext, *exc_info: Any) -> None:
            original_exit(self, *exc_info)
            if exc_info[0] is None:
                end(self)

        EnvironmentContext.configure = configure_wrapper  # type: ignore[method-assign]
        EnvironmentContext.run_migrations = run_wrapper  # type: ignore[method-assign]
        EnvironmentContext.__exit__ = exit_wrapper  # type: ignore[method-assign]
        _installed.update(
            configure=original_configure, run_migrations=original_run, exit=original_exit
        )


def context_options(environment: EnvironmentContext) -> dict[str, Any]:
    """The options the command gave the ``EnvironmentContext`` (``fn``, ``destination_rev``,
    ``as_sql``, ...), which ``configure()`` merges with env.py's own.  The dict itself: a
    change is seen by the ``MigrationContext`` that ``configure()`` makes next."""
    return environment.context_opts


def upgrade_steps(
    script: ScriptDirectory, destination: str, heads: Sequence[str]
) -> Iterable[Any]:
    """The ``RevisionStep`` objects ``upgrade destination`` would run from ``heads``."""
    return script._upgrade_revs(destination, heads)  # type: ignore[arg-type]


def downgrade_steps(
    script: ScriptDirectory, destination: str, heads: Sequence[str]
) -> Iterable[Any]:
    """The ``RevisionStep`` objects ``downgrade destination`` would run from ``heads``."""
    return script._downgrade_revs(destination, heads)  # type: ignore[arg-type]


def version_locations(script: ScriptDirectory) -> list[str]:
    """The folders Alembic reads revision files from, as configured (first: the default)."""
    return [str(location) for location in script._version_locations]
