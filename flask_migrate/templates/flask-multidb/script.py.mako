<%!
from flask_migrate.runtime import database_names
%>"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# Identifiers Alembic reads to place this revision in the history.
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade(engine_name):
    # A database added after this revision was written has nothing to do here.
    globals().get(f"upgrade_{engine_name}", lambda: None)()


def downgrade(engine_name):
    globals().get(f"downgrade_{engine_name}", lambda: None)()

## One pair of functions per database; the default database's are upgrade_() / downgrade_().
% for name in database_names():


def upgrade_${name}():
    ${context.get(f"{name}_upgrades", "pass")}


def downgrade_${name}():
    ${context.get(f"{name}_downgrades", "pass")}
% endfor
