"""Alembic runs this file for every `db` command that reads the models or the database.

Flask-Migrate's runtime does the work (database URL, models' metadata, transactions, --sql);
the hooks below are yours to change.
"""
from flask_migrate.runtime import run_migrations


def include_object(object, name, type_, reflected, compare_to):
    """Return False to keep an object out of autogenerate (e.g. a table another tool owns)."""
    return True


def process_revision_directives(context, revision, directives):
    """Adjust what `db migrate` is about to write; an empty revision is dropped afterwards."""


run_migrations(
    asynchronous=True,
    include_object=include_object,
    process_revision_directives=process_revision_directives,
    # metadata=other_metadata,        # compare against this instead of db.metadata
    # compare_server_default=True,    # any other EnvironmentContext.configure() argument
)
