"""Every use of Alembic's private API, in one place, each with the reason it is needed.

Alembic (1.19 and 1.20 are tested) documents no way to:

- run code around whatever env.py does, which is how the migration lock, real SQLite
  transactions, progress and the heads memo hold for every env.py, not only ours
  (:func:`install_environment_hooks`);
- read the options a command gave its ``EnvironmentContext`` (the step function ``fn`` and the
  destination of an upgrade) (:func:`context_options`);
- list the revisions an upgrade or a downgrade would run, without running them, which
  ``status`` and ``--plan`` print (:func:`upgrade_steps`, :func:`downgrade_steps`; the
  common cases without Alembic's walks through the whole history);
- list the folders revision files live in, which the heads memo hashes
  (:func:`version_locations`);
- give the ``ScriptDirectory`` a command makes for itself a revision map read from the graph
  memo instead of from the revision modules (:func:`install_script_directory_hook`), and load
  the revision files in Alembic's own order when the memo is written
  (:func:`load_revision_files`), and keep a revision map once built
  (:func:`revision_map_state`, :func:`revision_map_from_state`): building one costs time
  quadratic in the number of revisions;
- list the revisions ``current`` prints in time linear in the number of revisions, where
  Alembic's ``get_all_current`` takes time quadratic in it (:func:`serve_all_current`);
- give the walk of the whole history (``history``, ``branches``) in the order Alembic gave it
  when the memo was written, instead of sorting the graph again (:func:`full_walk`,
  :func:`serve_full_walk`).

When Alembic changes one of these, this module is the one to mend.  Nothing else in the
package touches a name of Alembic's that starts with an underscore.
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence, cast

from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionMap

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext, MigrationStep
    from alembic.script import Script

#: The keyword arguments of ``EnvironmentContext.configure()`` or ``run_migrations()``: any of
#: Alembic's options, and whatever env.py passes on to its own hooks.
Options = dict[str, Any]
#: ``hook(environment, original, kwargs)`` runs in place of ``EnvironmentContext.configure``.
ConfigureHook = Callable[[EnvironmentContext, Callable[..., None], Options], None]
#: ``hook(environment, original, kwargs)`` runs in place of ``EnvironmentContext.run_migrations``.
RunHook = Callable[[EnvironmentContext, Callable[..., None], Options], None]
#: ``hook(environment)`` runs when a command's ``with EnvironmentContext(...)`` block (the run
#: of env.py) ends without an exception.
EndHook = Callable[[EnvironmentContext], None]
#: A command's step function (the ``fn`` option): the steps from the database's current heads.
StepsFunction = Callable[
    [tuple[str, ...], "MigrationContext"], Iterable["MigrationStep"]
]

#: The methods of Alembic's the wrappers replaced, by name.
_installed: dict[str, Callable[..., object]] = {}
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
        if "configure" in _installed:
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
        def exit_wrapper(self: EnvironmentContext, *exc_info: object) -> None:
            original_exit(self, *exc_info)
            if exc_info[0] is None:
                end(self)

        EnvironmentContext.configure = configure_wrapper  # type: ignore[method-assign]
        EnvironmentContext.run_migrations = run_wrapper  # type: ignore[method-assign]
        EnvironmentContext.__exit__ = exit_wrapper  # type: ignore[method-assign]
        _installed.update(
            configure=original_configure, run_migrations=original_run, exit=original_exit
        )


def context_options(environment: EnvironmentContext) -> Options:
    """The options the command gave the ``EnvironmentContext`` (``fn``, ``destination_rev``,
    ``as_sql``, ...), which ``configure()`` merges with env.py's own.  The dict itself: a
    change is seen by the ``MigrationContext`` that ``configure()`` makes next."""
    return environment.context_opts


@dataclass(frozen=True)
class PlannedStep:
    """One revision an upgrade or a downgrade would run: what ``status`` and ``--plan`` read of
    Alembic's ``RevisionStep``, which imports the revision's module to find its function."""

    revision: Script
    is_upgrade: bool


def upgrade_steps(
    script: ScriptDirectory, destination: str, heads: Sequence[str]
) -> list[PlannedStep]:
    """The steps ``upgrade destination`` would run from ``heads``, in order.

    ``ScriptDirectory._upgrade_revs`` without making the ``RevisionStep`` objects: the same
    revisions, order and errors (its ``_catch_revision_errors``, with its message).  A
    database at every head has nothing to upgrade to ``heads`` (nor to ``head``, when there
    is one): said without Alembic's walk through all the revisions below them, which is what
    ``status`` costs with a long history.
    """
    if destination in ("heads", "head") and len(set(heads)) == len(heads):
        folder_heads = script.get_heads()
        if set(heads) == set(folder_heads) and (destination == "heads" or len(folder_heads) == 1):
            return []
    with script._catch_revision_errors(
        ancestor="Destination %(end)s is not a valid upgrade target from current head(s)",
        end=destination,
    ):
        revisions = script.iterate_revisions(destination, tuple(heads), implicit_base=True)
        return [PlannedStep(revision, True) for revision in reversed(list(revisions))]


def downgrade_steps(
    script: ScriptDirectory, destination: str, heads: Sequence[str]
) -> list[PlannedStep]:
    """The steps ``downgrade destination`` would run from ``heads``, in order (as
    ``ScriptDirectory._downgrade_revs`` lists them, see :func:`upgrade_steps`).

    One step down (``-1``, the default) from a database at one revision that revises one
    revision (no merge point) is that revision: said without Alembic's walks through every
    ancestor and descendant of the revision below it.
    """
    if destination == "-1" and len(heads) == 1:
        revision = script.revision_map._revision_map.get(heads[0])
        if (revision is not None and revision.revision == heads[0]
                and isinstance(revision.down_revision, str)):
            return [PlannedStep(cast("Script", revision), False)]  # as walk_revisions casts
    with script._catch_revision_errors(
        ancestor="Destination %(end)s is not a valid downgrade target from current head(s)",
        end=destination,
    ):
        revisions = script.iterate_revisions(
            tuple(heads), destination, select_for_downgrade=True
        )
        return [PlannedStep(revision, False) for revision in revisions]


#: ``hook(config, script)`` runs on every ``ScriptDirectory`` made by ``from_config(config)``.
ScriptDirectoryHook = Callable[["Config", ScriptDirectory], None]


def install_script_directory_hook(hook: ScriptDirectoryHook) -> None:
    """Call ``hook(config, script)`` on every ``ScriptDirectory.from_config(config)``.

    Alembic's commands make their ``ScriptDirectory`` themselves, with ``from_config`` (which is
    public), and offer no way to pass one in; the classmethod is wrapped, once per process.
    The hook decides from ``config.attributes`` whether the command is one of ours, and leaves
    any other ``ScriptDirectory`` alone.
    """
    with _install_lock:
        if "from_config" in _installed:
            return
        original = ScriptDirectory.__dict__["from_config"].__func__

        @functools.wraps(original)
        def from_config(cls: type[ScriptDirectory], config: Config) -> ScriptDirectory:
            script: ScriptDirectory = original(cls, config)
            hook(config, script)
            return script

        ScriptDirectory.from_config = classmethod(  # type: ignore[method-assign,assignment]
            from_config
        )
        _installed["from_config"] = original


def load_revision_files(script: ScriptDirectory) -> Iterator[Script]:
    """The ``Script`` of every revision file, imported, in the order Alembic reads them.

    ``ScriptDirectory._load_revisions`` is what its revision map is built from; the order
    decides the order of heads and of revisions with the same parent in every listing.
    """
    return script._load_revisions()


def revision_map_state(revision_map: RevisionMap) -> dict[str, object]:
    """What a built ``RevisionMap`` holds (its memoized ``_revision_map`` and the heads and
    bases it sets beside it), to be given to :func:`revision_map_from_state` in another process
    with the same Alembic version.  (Its private attributes, of whatever types that version
    gives them.)"""
    revision_map.heads  # builds it
    return {name: value for name, value in vars(revision_map).items() if name != "_generator"}


def revision_map_from_state(state: dict[str, object]) -> RevisionMap:
    """A ``RevisionMap`` already built, from :func:`revision_map_state`."""

    def unused() -> Iterable[Script]:
        raise AssertionError("a revision map made from its state is never built again")

    revision_map = RevisionMap(unused)
    vars(revision_map).update(state)
    return revision_map


def version_locations(script: ScriptDirectory) -> list[str]:
    """The folders Alembic reads revision files from, as configured (first: the default)."""
    return [str(location) for location in script._version_locations]


def serve_all_current(script: ScriptDirectory, dependencies: bool = True) -> None:
    """Make ``script.get_all_current`` (what ``current`` prints) linear in the revisions.

    ``RevisionMap._get_all_current`` takes the database's revisions with all their ancestors
    (dependencies too) and keeps those of which none of the others is a descendant, by walking
    all the descendants of each: 12 million steps, five seconds, at 5000 linear revisions.  As
    the set holds every ancestor of its members, a revision has a descendant in it exactly when
    it has a child in it (a revision naming it in ``down_revision``, which is what Alembic's
    walk follows), so one look at each revision's children is enough.  The result is the same
    set, built with the same operations from the same objects, so it is even listed in the
    same order.  Alembic's ``command.current`` calls the method of the ``ScriptDirectory`` it
    made, and offers no other way in: the method is replaced on that one object.

    :param dependencies: False when no revision of the folder has ``depends_on``: then one
        revision in the database is the whole answer, with no walk at all.
    """

    def get_all_current(id_: tuple[str, ...]) -> set[Any]:
        revision_map = script.revision_map
        with script._catch_revision_errors():
            top: set[Any] = set(revision_map.get_revisions(id_))
            if len(top) < 2 and not dependencies:
                # Its ancestors all have a child among them; only a revision it depends on
                # (with its ancestors) could be listed beside it.
                return top
            top.update(revision_map._get_ancestor_nodes(list(top), include_dependencies=True))
            # The rest is RevisionMap._filter_into_branch_heads(top), without its walks.  Which
            # revisions it drops does not depend on the order it drops them in; a child is
            # looked for in the whole set, as it may have been dropped already.
            targets = set(top)
            by_id = revision_map._revision_map
            for revision in list(targets):
                assert revision
                if any(by_id[child] in top for child in revision.nextrev):
                    targets.discard(revision)
            return targets

    script.get_all_current = get_all_current  # type: ignore[method-assign]


#: The arguments ``ScriptDirectory.walk_revisions()`` gives ``RevisionMap.iterate_revisions``
#: for the whole history (``history`` with no range, ``branches``), in the order of its
#: parameters: upper, lower, implicit_base, inclusive, assert_relative_length,
#: select_for_downgrade.
_FULL_WALK = ("heads", "base", False, True, False, False)


def full_walk(revision_map: RevisionMap) -> list[str]:
    """The ids of the whole history as ``walk_revisions()`` gives them (heads to base).

    :raises Exception: whatever Alembic raises for a graph it cannot walk.
    """
    upper, lower, implicit_base, inclusive, relative, downgrade = _FULL_WALK
    return [revision.revision for revision in revision_map.iterate_revisions(
        upper, lower, implicit_base=implicit_base, inclusive=inclusive,
        assert_relative_length=relative, select_for_downgrade=downgrade,
    )]


def serve_full_walk(revision_map: RevisionMap, order: Sequence[str]) -> None:
    """Make the walk of the whole history on ``revision_map`` give the revisions of ``order``
    (:func:`full_walk` of the same graph) without sorting them again.

    ``RevisionMap.iterate_revisions`` collects every ancestor of the heads, then sorts them
    topologically in the order of the map's keys: at 5000 revisions, more than what
    ``history`` does with each one.  The result depends only on the graph and on that order,
    which the memo keeps as they were, so it is the one :func:`full_walk` gave when the memo
    was written.  Any other walk (a range, a downgrade) is Alembic's own.
    """
    own = revision_map.iterate_revisions
    by_id = revision_map._revision_map

    def iterate_revisions(
        upper: Any, lower: Any, implicit_base: bool = False, inclusive: bool = False,
        assert_relative_length: bool = True, select_for_downgrade: bool = False,
    ) -> Iterator[Any]:
        asked = (upper, lower, implicit_base, inclusive, assert_relative_length,
                 select_for_downgrade)
        if asked == _FULL_WALK:
            return (by_id[revision] for revision in order)
        return own(upper, lower, implicit_base=implicit_base, inclusive=inclusive,
                   assert_relative_length=assert_relative_length,
                   select_for_downgrade=select_for_downgrade)

    revision_map.iterate_revisions = iterate_revisions  # type: ignore[method-assign]
