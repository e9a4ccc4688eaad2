from __future__ import with_statement

import logging
from logging.config import fileConfig

from sqlalchemy import engine_from_config
from sqlalchemy import pool
from flask import current_app

from alembic import context

# Alembic's configuration: alembic.ini plus the options of the command being run.
config = context.config

# alembic.ini carries the logging setup ([loggers], [handlers], [formatters]).
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

# Point Alembic at the database of the Flask app's engine.  The value goes through the
# ini parser, which treats '%' as the start of an interpolation, hence the doubling.
config.set_main_option(
    'sqlalchemy.url',
    str(current_app.extensions['migrate'].db.engine.url).replace('%', '%%'))
# The models autogenerate compares against.
target_metadata = current_app.extensions['migrate'].db.metadata


def include_object(object, name, type_, reflected, compare_to):
    """Leave scratch tables (tmp_*) made by the import jobs out of autogenerate."""
    if type_ == 'table' and name.startswith('tmp_'):
        return False
    return True


def run_migrations_offline():
    """--sql: render the migrations as SQL text for the configured URL.

    Only a URL is given to Alembic, so no connection (nor even a driver) is needed;
    values are written inline into the statements.
    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_object=include_object,
        version_table='schema_history',
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Create an engine from the URL above and migrate through one of its connections."""

    # No empty revision files from 'migrate', and no revision without a message: the
    # file names and the changelog are made from it.
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')
                return
        if directives and directives[0].message is None:
            directives[0].message = 'schema update'

    connectable = engine_from_config(
        config.get_section(config.config_ini_section),
        prefix='sqlalchemy.',
        poolclass=pool.NullPool,
    )

    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            process_revision_directives=process_revision_directives,
            compare_type=True,
            compare_server_default=True,
            render_as_batch=True,
            include_object=include_object,
            # renamed from alembic_version when the schema was shared with reporting
            version_table='schema_history',
            **current_app.extensions['migrate'].configure_args
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
