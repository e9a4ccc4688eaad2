"""Tests of the test suite's database servers (:mod:`tests.servers`).

Every other database test trusts these fixtures, so this module checks the promises they make:
a real server reached over TCP with a password, a fresh database per test that other databases
cannot see, wrong passwords rejected, databases dropped even while a client is still connected,
and a visible skip reason when a server is switched off.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
import sqlalchemy as sa

from tests.servers import NO_MARIADB_VAR, NO_PG_VAR, MariaDBServer, PostgresServer, _Server

# Works whether or not the root conftest already loaded the plugin (loading twice is a no-op).
pytest_plugins = ["tests.servers"]

BACKENDS = ["postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def server_and_url(request: pytest.FixtureRequest) -> tuple[_Server, str]:
    """Each backend's server and a fresh database on it, through the public fixtures."""
    server = request.getfixturevalue(f"{request.param}_server")
    url = request.getfixturevalue(f"{request.param}_url")
    return server, url


@pytest.fixture
def engine_factory() -> Iterator[list[sa.engine.Engine]]:
    """Engines created by a test, disposed at its end even when it fails."""
    engines: list[sa.engine.Engine] = []
    yield engines
    for engine in engines:
        engine.dispose()


def _engine(engines: list[sa.engine.Engine], url: str | sa.engine.URL) -> sa.engine.Engine:
    engine = sa.create_engine(url)
    engines.append(engine)
    return engine


def _tables(engine: sa.engine.Engine) -> list[str]:
    return sa.inspect(engine).get_table_names()


def _databases(server: _Server) -> set[str]:
    sql = (
        "SELECT datname FROM pg_database"
        if isinstance(server, PostgresServer)
        else "SELECT schema_name FROM information_schema.schemata"
    )
    with server._engine().connect() as conn:
        return set(conn.execute(sa.text(sql)).scalars())


def test_url_reaches_the_server_over_tcp_with_a_password(
    server_and_url: tuple[_Server, str], engine_factory: list[sa.engine.Engine]
) -> None:
    server, url = server_and_url
    parsed = sa.engine.make_url(url)
    assert (parsed.host, parsed.port) == ("127.0.0.1", server.port)
    assert (parsed.username, parsed.password) == (server.user, server.password)
    engine = _engine(engine_factory, url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    assert _tables(engine) == []


def test_each_test_database_is_isolated(
    server_and_url: tuple[_Server, str],
    engine_factory: list[sa.engine.Engine],
    request: pytest.FixtureRequest,
) -> None:
    server, url = server_and_url
    with _engine(engine_factory, url).begin() as conn:
        conn.execute(sa.text("CREATE TABLE widget (id INTEGER PRIMARY KEY)"))
        conn.execute(sa.text("INSERT INTO widget (id) VALUES (1)"))
    other_name = "t_other_" + os.urandom(4).hex()
    other_url = server.create_database(other_name)
    request.addfinalizer(lambda: server.drop_database(other_name))
    assert other_url != url
    assert _tables(_engine(engine_factory, other_url)) == []
    assert _tables(_engine(engine_factory, url)) == ["widget"]


def test_wrong_password_is_rejected_without_echoing_it(
    server_and_url: tuple[_Server, str], engine_factory: list[sa.engine.Engine]
) -> None:
    server, url = server_and_url
    wrong = sa.engine.make_url(url).set(password="not-" + server.password)
    with pytest.raises(sa.exc.OperationalError) as excinfo:
        with _engine(engine_factory, wrong).connect():
            pass
    message = str(excinfo.value)
    assert "password authentication failed" in message or "Access denied" in message
    assert server.password not in message
    assert server.password not in repr(server)


def test_drop_database_disconnects_remaining_clients(
    server_and_url: tuple[_Server, str]
) -> None:
    server, _ = server_and_url
    name = "t_dropped_" + os.urandom(4).hex()
    # A client still inside a transaction that touched a table: the worst case for DROP DATABASE.
    engine = sa.create_engine(server.create_database(name))
    conn = engine.connect()
    try:
        conn.begin()  # explicit: SQLAlchemy 1.4 warns about its implicit "autocommit"
        conn.execute(sa.text("CREATE TABLE t (id INTEGER)"))
        conn.execute(sa.text("SELECT * FROM t")).fetchall()
        assert name in _databases(server)
        server.drop_database(name)
        assert name not in _databases(server)
        server.drop_database(name)  # dropping twice is harmless
    finally:
        conn.invalidate()  # its server side is gone; do not try to roll back on it
        engine.dispose()


def test_servers_report_their_availability() -> None:
    for cls in (PostgresServer, MariaDBServer):
        ok, reason = cls.available()
        assert isinstance(ok, bool) and isinstance(reason, str)
        assert ok or reason


def test_opting_out_skips_with_a_visible_reason(tmp_path: Path) -> None:
    # A separate pytest run, so that this session's servers are not affected; without the
    # suite's conftest, so that only this module and its plugin are under test.
    env = dict(os.environ, **{NO_PG_VAR: "1", NO_MARIADB_VAR: "1"})
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--noconftest", "-p", "no:cacheprovider", "-k", "tcp_with_a_password",
         f"--basetemp={tmp_path / 'inner'}", str(Path(__file__).resolve())],
        cwd=root, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 skipped" in proc.stdout
    assert f"{NO_PG_VAR}=1 is set" in proc.stdout
    assert f"{NO_MARIADB_VAR}=1 is set" in proc.stdout
