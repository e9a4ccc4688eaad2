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

# Further settings of this environment could be read from alembic.ini, e.g.
# config.get_main_option("some_setting").


def run_migrations_offline():
    """--sql: render the migrations as SQL text for the configured URL.

    Only a URL is given to Alembic, so no connection (nor even a driver) is needed;
    values are written inline into the statements.
    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=target_metadata, literal_binds=True
    )

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Create an engine from the URL above and migrate through one of its connections."""

    # Keep 'migrate' from writing a revision file when the models match the database
    # (the recipe from the Alembic cookbook).
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

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
            **current_app.extensions['migrate'].configure_args
        )

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
