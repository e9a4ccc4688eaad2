from __future__ import with_statement
from alembic import context
from sqlalchemy import engine_from_config, pool
from logging.config import fileConfig
import logging

# Alembic's configuration: alembic.ini plus the options of the command being run.
config = context.config

# alembic.ini carries the logging setup ([loggers], [handlers], [formatters]).
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

# The database is whatever the Flask app is configured with, taken verbatim from its
# config; the models are the Flask-SQLAlchemy object's metadata.
from flask import current_app
config.set_main_option('sqlalchemy.url',
                       current_app.config.get('SQLALCHEMY_DATABASE_URI'))
target_metadata = current_app.extensions['migrate'].db.metadata

# Further settings of this environment could be read from alembic.ini, e.g.
# config.get_main_option("some_setting").


def run_migrations_offline():
    """--sql: print the migration SQL for the configured URL; no database is opened."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(url=url)

    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Build an engine from the URL above and migrate through one connection."""

    # Keep 'migrate' from writing a revision file when the models match the database
    # (the recipe from the Alembic cookbook).
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    engine = engine_from_config(config.get_section(config.config_ini_section),
                                prefix='sqlalchemy.',
                                poolclass=pool.NullPool)

    connection = engine.connect()
    context.configure(connection=connection,
                      target_metadata=target_metadata,
                      process_revision_directives=process_revision_directives,
                      **current_app.extensions['migrate'].configure_args)

    try:
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.close()

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
