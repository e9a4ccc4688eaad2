"""The raw floor: the upgrade's statements through the bare driver, in one transaction.

``python benchmarks/raw_ddl.py SCRIPT`` runs the SQL script that ``benchmarks/migrations.py``
wrote for the project (the statements of every ``upgrade()`` and of the ``alembic_version``
bookkeeping, as Alembic renders them) against ``BENCH_DATABASE_URL``, with ``sqlite3`` or
``psycopg2`` only: no SQLAlchemy, no Alembic, no application.  This is what the database
itself costs, plus the start of a Python process.
"""
import os
import sys


def main(script: str, url: str) -> None:
    with open(script, encoding="utf-8") as source:
        statements = [text for text in source.read().split(";\n\n") if text.strip()]
    if url.startswith("sqlite:///"):
        import sqlite3

        # isolation_level=None: the driver issues no BEGIN/COMMIT of its own, we do.
        connection = sqlite3.connect(url[len("sqlite:///"):], isolation_level=None)
        connection.execute("BEGIN")
        for statement in statements:
            connection.execute(statement)
        connection.execute("COMMIT")
        connection.close()
    elif url.startswith("postgresql://"):
        import psycopg2

        # psycopg2 opens the transaction before the first statement; libpq reads the URL.
        connection = psycopg2.connect(url)
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        connection.commit()
        connection.close()
    else:
        sys.exit(f"raw_ddl.py: no bare driver for {url.split(':', 1)[0]}")


if __name__ == "__main__":
    if len(sys.argv) != 2 or "BENCH_DATABASE_URL" not in os.environ:
        sys.exit("usage: BENCH_DATABASE_URL=URL python raw_ddl.py SCRIPT")
    main(sys.argv[1], os.environ["BENCH_DATABASE_URL"])
