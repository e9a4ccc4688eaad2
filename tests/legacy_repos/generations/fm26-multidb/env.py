from __future__ import with_statement

import logging
from logging.config import fileConfig

from sqlalchemy import engine_from_config
from sqlalchemy import MetaData
from sqlalchemy import pool
from flask import current_app

from alembic import context

# True commits all the databases with two-phase commit (every driver must support it).
USE_TWOPHASE = False

# Alembic's configuration: alembic.ini plus the options of the command being run.
config = context.config

# alembic.ini carries the logging setup ([loggers], [handlers], [formatters]).
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')

# The default database's URL goes in the main section and each bind's in a section of
# its own name.  The values go through the ini parser, which treats '%' as the start of
# an interpolation, hence the doubling.
config.set_main_option(
    'sqlalchemy.url',
    str(current_app.extensions['migrate'].db.engine.url).replace('%', '%%'))
bind_names = []
for bind in current_app.config.get("SQLALCHEMY_BINDS"):
    context.config.set_section_option(
        bind, "sqlalchemy.url",
        str(current_app.extensions['migrate'].db.get_engine(
            current_app, bind).url).replace('%', '%%'))
    bind_names.append(bind)
# One metadata holds the models of all the databases; get_metadata() splits it.
target_metadata = current_app.extensions['migrate'].db.metadata

# Further settings of this environment could be read from alembic.ini, e.g.
# config.get_main_option("some_setting").


def get_metadata(bind):
    """A metadata with only the tables of one database ('' is the default one).

    Flask-SQLAlchemy 2 records a model's __bind_key__ in its table's info.
    """
    key = None if bind == '' else bind
    subset = MetaData()
    for table in target_metadata.tables.values():
        if table.info.get('bind_key') == key:
            table.tometadata(subset)
    return subset


def run_migrations_offline():
    """--sql: write each database's migration SQL to <name>.sql in the working folder.

    Only URLs are given to Alembic, so no connection (nor even a driver) is needed.
    """
    engines = {
        '': {
            'url': context.config.get_main_option('sqlalchemy.url')
        }
    }
    for name in bind_names:
        engines[name] = rec = {}
        rec['url'] = context.config.get_section_option(name, "sqlalchemy.url")

    for name, rec in engines.items():
        logger.info("Migrating database %s" % (name or '<default>'))
        sql_file = "%s.sql" % name
        logger.info("Writing output to %s" % sql_file)
        with open(sql_file, 'w') as buffer:
            context.configure(
                url=rec['url'],
                output_buffer=buffer,
                target_metadata=get_metadata(name),
                literal_binds=True,
            )
            with context.begin_transaction():
                context.run_migrations(engine_name=name)


def run_migrations_online():
    """Migrate every database inside one transaction each, committed together at the end."""

    # Keep 'migrate' from writing a revision file when no database has changes.
    def process_revision_directives(context, revision, directives):
        if getattr(config.cmd_opts, 'autogenerate', False):
            script = directives[0]
            if len(script.upgrade_ops_list) >= len(bind_names) + 1:
                unchanged = True
                for upgrade_ops in script.upgrade_ops_list:
                    if not upgrade_ops.is_empty():
                        unchanged = False
                if unchanged:
                    directives[:] = []
                    logger.info('No changes in schema detected.')

    # An engine per database, built from the URLs set above.
    engines = {
        '': {
            'engine': engine_from_config(
                config.get_section(config.config_ini_section),
                prefix='sqlalchemy.',
                poolclass=pool.NullPool,
            )
        }
    }
    for name in bind_names:
        engines[name] = rec = {}
        rec['engine'] = engine_from_config(
            context.config.get_section(name),
            prefix='sqlalchemy.',
            poolclass=pool.NullPool)

    # Connect to all of them and open their transactions before migrating any.
    for name, rec in engines.items():
        engine = rec['engine']
        rec['connection'] = conn = engine.connect()

        if USE_TWOPHASE:
            rec['transaction'] = conn.begin_twophase()
        else:
            rec['transaction'] = conn.begin()

    try:
        for name, rec in engines.items():
            logger.info("Migrating database %s" % (name or '<default>'))
            context.configure(
                connection=rec['connection'],
                upgrade_token="%s_upgrades" % name,
                downgrade_token="%s_downgrades" % name,
                target_metadata=get_metadata(name),
                process_revision_directives=process_revision_directives,
                **current_app.extensions['migrate'].configure_args
            )
            context.run_migrations(engine_name=name)

        if USE_TWOPHASE:
            for rec in engines.values():
                rec['transaction'].prepare()

        for rec in engines.values():
            rec['transaction'].commit()
    except:  # noqa: E722 - whatever went wrong, no database keeps a partial migration
        for rec in engines.values():
            rec['transaction'].rollback()
        raise
    finally:
        for rec in engines.values():
            rec['connection'].close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
