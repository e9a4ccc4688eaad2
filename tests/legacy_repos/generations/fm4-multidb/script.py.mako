<%!
import re

%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# Where this revision sits in the history.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade(engine_name):
    globals()["upgrade_%s" % engine_name]()


def downgrade(engine_name):
    globals()["downgrade_%s" % engine_name]()

<%
    from flask import current_app
    # Flask-SQLAlchemy 2 lists the binds in the config; Alchemical has bind_names().
    binds = current_app.config.get('SQLALCHEMY_BINDS')
    if binds is not None:
        binds = list(current_app.config['SQLALCHEMY_BINDS'].keys())
    else:
        binds = []
        list_binds = getattr(current_app.extensions['migrate'].db, 'bind_names', None)
        if list_binds:
            binds = list_binds()
    db_names = [''] + binds
%>

## env.py calls upgrade(engine_name) once per database; each database ('' is the
## default one) gets its own pair of functions below.

% for db_name in db_names:

def upgrade_${db_name}():
    ${context.get("%s_upgrades" % db_name, "pass")}


def downgrade_${db_name}():
    ${context.get("%s_downgrades" % db_name, "pass")}

% endfor
