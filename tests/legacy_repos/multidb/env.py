from __future__ import with_statement

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import MetaData, engine_from_config, pool

# Two-phase commit across the databases (needs support from every driver).
USE_TWOPHASE = False

# Alembic's view of alembic.ini, plus whatever the command line added.
config = context.config

# The [loggers], [handlers] and [formatters] sections of alembic.ini set up logging.
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

# The default database goes in the main section, each bind in a section named after it;
# '%' must be doubled for the ini parser.
config.set_main_option(
    'sqlalchemy.url',
    str(current_app.extensions['migrate'].db.engine.url).replace('%', '%%'))
bind_names = list((current_app.config.get('SQLALCHEMY_BINDS') or {}).keys())
for bind in bind_names:
    bind_engine = current_app.extensions['migrate'].db.get_engine(current_app, bind)
    config.set_section_option(
        bind, 'sqlalchemy.url', str(bind_engine.url).replace('%', '%%'))

# Every model of every bind; get_metadata() picks one database's share.
target_metadata = current_app.extensions['migrate'].db.metadata


def get_metadata(bind):
    """The models of one database: Flask-SQLAlchemy marks each table with its bind key."""
    wanted = bind or None
    selected = MetaData()
    for table in target_metadata.tables.values():
        if table.info.get('bind_key') == wanted:
            table.tometadata(selected)
    return selected


def run_migrations_offline():
    """Write one SQL script per database (<name>.sql) instead of executing anything."""
    urls = {'': config.get_main_option('sqlalchemy.url')}
    for bind in bind_names:
        urls[bind] = config.get_section_option(bind, 'sqlalchemy.url')

    for name, url in urls.items():
        logger.info('Writing SQL for database %r to %s.sql', name, name)
        with open('%s.sql' % name, 'w') as buffer:
            context.configure(
                url=url,
                output_buffer=buffer,
                target_metadata=get_metadata(name),
                literal_binds=True,
            )
            with context.begin_transaction():
                context.run_migrations(engine_name=name)


def run_migrations_online():
    """Connect to every database, run each one's migrations, then commit them all."""

    def process_revision_directives(context, revision, directives):
        # Drop the revision when autogenerate found nothing in any of the databases.
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if len(script.upgrade_ops_list) >= len(bind_names) + 1:
                if all(ops.is_empty() for ops in script.upgrade_ops_list):
                    directives[:] = []
                    logger.info('No changes in schema detected.')

    engines = {'': engine_from_config(
        config.get_section(config.config_ini_section),
        prefix='sqlalchemy.', poolclass=pool.NullPool)}
    for bind in bind_names:
        engines[bind] = engine_from_config(
            config.get_section(bind), prefix='sqlalchemy.', poolclass=pool.NullPool)

    connections = {}
    transactions = {}
    for name, engine in engines.items():
        connections[name] = connection = engine.connect()
        if USE_TWOPHASE:
            transactions[name] = connection.begin_twophase()
        else:
            transactions[name] = connection.begin()

    try:
        for name in engines:
            logger.info('Migrating database %s' % (name or '<default>'))
            context.configure(
                connection=connections[name],
                upgrade_token='%s_upgrades' % name,
                downgrade_token='%s_downgrades' % name,
                target_metadata=get_metadata(name),
                process_revision_directives=process_revision_directives,
                **current_app.extensions['migrate'].configure_args
            )
            context.run_migrations(engine_name=name)

        if USE_TWOPHASE:
            for transaction in transactions.values():
                transaction.prepare()
        for transaction in transactions.values():
            transaction.commit()
    except BaseException:
        for transaction in transactions.values():
            transaction.rollback()
        raise
    finally:
        for connection in connections.values():
            connection.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
