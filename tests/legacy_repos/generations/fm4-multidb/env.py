import logging
from logging.config import fileConfig

from sqlalchemy import MetaData
from flask import current_app

from alembic import context

# True commits all the databases with two-phase commit (every driver must support it).
USE_TWOPHASE = False

# Alembic's configuration: alembic.ini plus the options of the command being run.
config = context.config

# alembic.ini carries the logging setup ([loggers], [handlers], [formatters]).
fileConfig(config.config_file_name)
logger = logging.getLogger('alembic.env')


def get_engine(bind_key=None):
    """The engine of one database (None: the default one), whichever extension provides it."""
    try:
        # Flask-SQLAlchemy 2 and Alchemical take get_engine(bind=...)
        return current_app.extensions['migrate'].db.get_engine(bind=bind_key)
    except (TypeError, AttributeError):
        # Flask-SQLAlchemy 3 keeps them in the engines mapping
        return current_app.extensions['migrate'].db.engines.get(bind_key)


def get_engine_url(bind_key=None):
    """An engine's URL as text for alembic.ini, password included and '%' doubled."""
    try:
        return get_engine(bind_key).url.render_as_string(
            hide_password=False).replace('%', '%%')
    except AttributeError:
        # SQLAlchemy before 1.4 has no render_as_string(); str() keeps the password
        return str(get_engine(bind_key).url).replace('%', '%%')


# The default database's URL goes in the main section and each bind's in a section of
# its own name.
config.set_main_option('sqlalchemy.url', get_engine_url())
bind_names = []
if current_app.config.get('SQLALCHEMY_BINDS') is not None:
    bind_names = list(current_app.config['SQLALCHEMY_BINDS'].keys())
else:
    # Alchemical names its binds itself
    list_binds = getattr(current_app.extensions['migrate'].db,
                         'bind_names', None)
    if list_binds:
        bind_names = list_binds()
for bind in bind_names:
    context.config.set_section_option(
        bind, "sqlalchemy.url", get_engine_url(bind_key=bind))
# The Flask-SQLAlchemy (or Alchemical) object whose models autogenerate compares.
target_db = current_app.extensions['migrate'].db

# Further settings of this environment could be read from alembic.ini, e.g.
# config.get_main_option("some_setting").


def get_metadata(bind):
    """The models of one database ('' is the default one)."""
    key = None if bind == '' else bind
    if hasattr(target_db, 'metadatas'):
        # Flask-SQLAlchemy 3 and Alchemical keep a metadata per bind
        return target_db.metadatas[key]

    # Flask-SQLAlchemy 2: one metadata, each table marked with its bind key
    subset = MetaData()
    for table in target_db.metadata.tables.values():
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

    # The arguments given to Migrate(); the hook above unless the app brought its own.
    conf_args = current_app.extensions['migrate'].configure_args
    if conf_args.get("process_revision_directives") is None:
        conf_args["process_revision_directives"] = process_revision_directives

    # The app's own engines, one per database.
    engines = {
        '': {'engine': get_engine()}
    }
    for name in bind_names:
        engines[name] = rec = {}
        rec['engine'] = get_engine(bind_key=name)

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
                **conf_args
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
