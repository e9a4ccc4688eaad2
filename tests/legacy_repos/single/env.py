from __future__ import with_statement

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import engine_from_config, pool

# Alembic's view of alembic.ini, plus whatever the command line added.
config = context.config

# The [loggers], [handlers] and [formatters] sections of alembic.ini set up logging.
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

# Connect where the Flask app connects; '%' must be doubled for the ini parser.
config.set_main_option(
    'sqlalchemy.url',
    str(current_app.extensions['migrate'].db.engine.url).replace('%', '%%'))

# Autogenerate compares the database with these models.
target_metadata = current_app.extensions['migrate'].db.metadata


def run_migrations_offline():
    """Write the SQL of the migrations instead of executing it (--sql)."""
    url = config.get_main_option('sqlalchemy.url')
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Open a connection to the database and run the migrations on it."""

    def process_revision_directives(context, revision, directives):
        # 'migrate' with nothing to do would otherwise leave an empty revision file behind.
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    connectable = engine_from_config(
        config.get_section(config.config_ini_section),
        prefix='sqlalchemy.',
        poolclass=pool.NullPool)

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
