import asyncio
import logging
from logging.config import fileConfig

from flask import current_app

from alembic import context

# Alembic's configuration: alembic.ini plus the options of the command being run.
config = context.config

# alembic.ini carries the logging setup ([loggers], [handlers], [formatters]).
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')


def get_engine():
    """The (async) engine of the app's default database, whichever extension provides it."""
    try:
        # Flask-SQLAlchemy 2 and Alchemical have get_engine()
        return current_app.extensions['migrate'].db.get_engine()
    except (TypeError, AttributeError):
        # Flask-SQLAlchemy 3 only offers the engine property
        return current_app.extensions['migrate'].db.engine


def get_engine_url():
    """The engine's URL as text for alembic.ini, password included and '%' doubled."""
    try:
        return get_engine().url.render_as_string(hide_password=False).replace(
            '%', '%%')
    except AttributeError:
        # SQLAlchemy before 1.4 has no render_as_string(); str() keeps the password
        return str(get_engine().url).replace('%', '%%')


config.set_main_option('sqlalchemy.url', get_engine_url())
# The Flask-SQLAlchemy (or Alchemical) object whose models autogenerate compares.
target_db = current_app.extensions['migrate'].db

# Further settings of this environment could be read from alembic.ini, e.g.
# config.get_main_option("some_setting").


def get_metadata():
    """The default database's models: metadatas[None] where there is one per bind."""
    if hasattr(target_db, 'metadatas'):
        return target_db.metadatas[None]
    return target_db.metadata


def run_migrations_offline():
    """--sql: render the migrations as SQL text for the configured URL.

    Only a URL is given to Alembic, so no connection (nor even a driver) is needed;
    values are written inline into the statements.
    """
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url, target_metadata=get_metadata(), literal_binds=True
    )

    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection):
    """Configure Alembic with the connection run_sync() hands over and migrate."""

    # Keep 'migrate' from writing a revision file when the models match the database
    # (the recipe from the Alembic cookbook).
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if script.upgrade_ops.is_empty():
                directives[:] = []
                logger.info('No changes in schema detected.')

    # The arguments given to Migrate(); the hook above unless the app brought its own.
    conf_args = current_app.extensions['migrate'].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    context.configure(
        connection=connection,
        target_metadata=get_metadata(),
        **conf_args
    )

    with context.begin_transaction():
        context.run_migrations()


async def run_migrations_online():
    """Open an async connection of the app's engine and migrate in its sync bridge."""

    connectable = get_engine()

    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.get_event_loop().run_until_complete(run_migrations_online())
