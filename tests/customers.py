"""The revisions of ``tests/apps/tested`` (customers and their orders), as ``upgrade()`` and
``downgrade()`` bodies for :func:`tests.guarantee_helpers.write_revision`: the ``db test``
cases and the pytest plugin's build their histories from them.
"""

CUSTOMER = '''
op.create_table(
    "customer", sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
)
op.create_index("ix_customer_name", "customer", ["name"])
'''
ORDERS = '''
op.create_table(
    "orders", sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("customer.id")),
)
'''
ADD_TOTAL = '''
with op.batch_alter_table("orders") as batch_op:
    batch_op.add_column(sa.Column("total", sa.Integer))
'''
DROP_TOTAL = '''
with op.batch_alter_table("orders") as batch_op:
    batch_op.drop_column("total")
'''
