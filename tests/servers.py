"""Throwaway PostgreSQL and MariaDB servers for the test suite, and the fixtures that hand them out.

This module owns every real database server the tests use: finding the server binaries, starting
one server per backend per pytest session in a temporary directory (listening on 127.0.0.1 on a
free TCP port, its unix socket inside that directory, a superuser with a password), creating a
fresh database for each test and dropping it afterwards, and stopping the servers and deleting
their files at the end of the session.  Nothing is mocked: the tests talk to the real servers over
TCP with password authentication, as a deployed application would.

Load it as a pytest plugin from the root conftest (a test module may say the same; loading it
twice is harmless)::

    pytest_plugins = ["tests.servers"]

Fixtures:

``postgresql_server`` (session)
    The started :class:`PostgresServer`.
``postgresql_url`` (function)
    ``str``: the SQLAlchemy URL of a new, empty database on it, dropped after the test:
    ``postgresql://fm_test:<password>@127.0.0.1:<port>/<database>``.
``mariadb_server`` (session)
    The started :class:`MariaDBServer`.
``mariadb_url`` (function)
    ``str``: likewise, ``mysql+pymysql://fm_test:<password>@127.0.0.1:<port>/<database>``.

A test that requests a server fixture is skipped, with the reason shown in pytest's ``-ra``
summary, when the server's binaries are not installed.  Environment variables:

``FLASK_MIGRATE_TEST_NO_PG=1``
    Skip every PostgreSQL test deliberately (the binaries are not even looked for).
``FLASK_MIGRATE_TEST_NO_MARIADB=1``
    Skip every MariaDB test deliberately.
``FLASK_MIGRATE_TEST_REQUIRE_SERVERS=1``
    Missing binaries make those tests *fail* instead of skip.  ``.ci/run`` sets it, so CI
    cannot go green by silently skipping the database tests.

Running as root: ``initdb`` and ``postgres`` refuse to run as root, and ``mariadbd`` refuses
unless told ``--user``.  When the tests run as root, both servers therefore run as the
distribution's service account (``postgres``, ``mysql``; the Debian packages create them), or as
``nobody`` where that account does not exist; their temporary directory belongs to that account.
The password is random per server and never appears in ``repr()``; tests can use
``server.password`` to check that it does not leak into any output.

PYTEST_DONT_REWRITE: this plugin is also imported by test modules and conftests (for its classes),
in either order; pytest would warn, which ``filterwarnings = error`` makes fatal, when it cannot
rewrite asserts of a plugin imported before registration.  Its asserts need no rewriting.
"""
from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

NO_PG_VAR = "FLASK_MIGRATE_TEST_NO_PG"
NO_MARIADB_VAR = "FLASK_MIGRATE_TEST_NO_MARIADB"
REQUIRE_SERVERS_VAR = "FLASK_MIGRATE_TEST_REQUIRE_SERVERS"

#: Seconds a server gets to initialise its data directory, to start, or to stop.  Generous:
#: both stacks run in parallel on a small CI machine, each starting its own servers.
TIMEOUT = 60.0

#: Database and role names we generate or accept; quoting anything else is not worth the risk.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class ServerError(RuntimeError):
    """A server's binaries are present but it could not be set up; the message has its log."""


class _PortTaken(ServerError):
    """The free port we picked was taken before the server bound it; try another one."""


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _free_port() -> int:
    # The kernel picks an unused port; we release it and hand its number to the server.  Another
    # process (such as the other stack's test run) may grab it in between, so start() retries.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _unix_socket_accepts(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def _tail(path: Path, start: int = 0, lines: int = 40) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(start)
            text = log.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _executable(path: Path) -> bool:
    try:
        return path.is_file() and os.access(path, os.X_OK)
    except OSError:  # a PATH entry we may not look into, such as another user's home
        return False


def _path_dirs() -> list[Path]:
    return [Path(entry) for entry in os.environ.get("PATH", "").split(os.pathsep) if entry]


def _service_account(preferred: str) -> pwd.struct_passwd | None:
    """The account a server runs as: ``None`` (ourselves) unless we are root.

    As root, the distribution's service account, else ``nobody``: a test suite should not
    create accounts on a developer's machine.
    """
    if os.geteuid() != 0:
        return None
    for name in (preferred, "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServerError(
        f"running as root, and neither a {preferred!r} nor a 'nobody' account exists to run "
        "the database server as; create one, or run the tests as an ordinary user"
    )


def _check_identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain database name (letters, digits, _; <= 63): {name!r}")
    return name


class _Server:
    """What both servers share: the temporary directory, the account, the lifecycle, the URLs."""

    #: Shown in messages and skip reasons.
    backend: ClassVar[str]
    #: Short name for the temporary directory.
    slug: ClassVar[str]
    #: The account that runs the server when we are root.
    service_account: ClassVar[str]
    #: The SQLAlchemy driver name :meth:`url` uses by default.
    default_driver: ClassVar[str]
    #: The superuser the tests connect as.
    user: ClassVar[str] = "fm_test"
    host: ClassVar[str] = "127.0.0.1"

    def __init__(self, base_dir: str | os.PathLike[str] | None = None) -> None:
        # Hex only, so it needs no quoting in URLs, yet it is unique enough to grep output for.
        self.password = "fm-pw-" + secrets.token_hex(12)
        self.base_dir = base_dir
        self.port: int | None = None
        self.tmpdir: Path | None = None
        self.version = ""
        #: Wall-clock seconds :meth:`start` took (initialise + start + create the user).
        self.startup_seconds: float | None = None
        self._account: pwd.struct_passwd | None = None
        self._admin: Engine | None = None

    # -- subclass hooks -------------------------------------------------------------------------

    @classmethod
    def available(cls) -> tuple[bool, str]:
        """``(True, "")`` when this server can be started here, else ``(False, reason)``."""
        raise NotImplementedError

    def _initialize(self) -> None:
        """Create the data directory (runs once per start)."""
        raise NotImplementedError

    def _launch(self) -> None:
        """Start the server on :attr:`port` and wait until it accepts connections."""
        raise NotImplementedError

    def _after_launch(self) -> None:
        """Anything needed before :meth:`url` works (e.g. creating the user)."""

    def _shutdown(self) -> None:
        """Stop the server if it runs; must not raise if it never started."""
        raise NotImplementedError

    def _admin_database(self) -> str:
        raise NotImplementedError

    def _create_sql(self, name: str) -> Sequence[str]:
        raise NotImplementedError

    def _drop(self, conn: sa.engine.Connection, name: str) -> None:
        raise NotImplementedError

    # -- public API -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._admin is not None

    def url(self, dbname: str, driver: str | None = None) -> str:
        """The SQLAlchemy URL of database *dbname*, with user and password, over TCP.

        :param driver: the URL scheme, e.g. ``"postgresql+psycopg2"``; the default is
            :attr:`default_driver`.
        """
        if self.port is None:
            raise ServerError(f"{self.backend} server is not started")
        return (
            f"{driver or self.default_driver}://{quote(self.user, safe='')}:"
            f"{quote(self.password, safe='')}@{self.host}:{self.port}/{dbname}"
        )

    def create_database(self, name: str) -> str:
        """Create an empty database *name* and return its URL."""
        _check_identifier(name)
        with self._engine().connect() as conn:
            for statement in self._create_sql(name):
                conn.execute(sa.text(statement))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database *name* if it exists, disconnecting whoever is still connected to it."""
        _check_identifier(name)
        with self._engine().connect() as conn:
            self._drop(conn, name)

    def start(self) -> None:
        """Initialise a data directory and start the server; a no-op when already running."""
        if self.running:
            return
        ok, reason = self.available()
        if not ok:
            raise ServerError(reason)
        began = time.monotonic()
        self._account = _service_account(self.service_account)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"flask-migrate-{self.slug}-", dir=self._base()))
        # Registered before anything can fail, so that a half-started server is cleaned up even
        # when the caller never reaches stop() (an interrupted session).
        atexit.register(self.stop)
        try:
            if self._account is not None:
                os.chown(self.tmpdir, self._account.pw_uid, self._account.pw_gid)
            self._initialize()
            for attempt in range(3):
                self.port = _free_port()
                try:
                    self._launch()
                    break
                except _PortTaken:
                    if attempt == 2:
                        raise
            self._after_launch()
            self._admin = sa.create_engine(
                self.url(self._admin_database()),
                # No pool: an idle admin connection would keep a database from being dropped,
                # and outlive the server at the end of the session.
                poolclass=NullPool,
                # CREATE/DROP DATABASE cannot run inside a transaction block.
                isolation_level="AUTOCOMMIT",
            )
            with self._admin.connect() as conn:
                self.version = str(conn.execute(sa.text("SELECT version()")).scalar())
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the server and delete its files; safe to call more than once."""
        atexit.unregister(self.stop)
        if self._admin is not None:
            self._admin.dispose()
            self._admin = None
        try:
            if self.tmpdir is not None:
                self._shutdown()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
            self.port = None

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self.port else "stopped"
        return f"<{type(self).__name__} {where} user={self.user!r} password=***>"

    # -- helpers for subclasses -----------------------------------------------------------------

    def _engine(self) -> Engine:
        if self._admin is None:
            raise ServerError(f"{self.backend} server is not started")
        return self._admin

    def _base(self) -> str | os.PathLike[str] | None:
        if self.base_dir is not None:
            return self.base_dir
        # The service account must be able to reach its directory, and pytest's own tmp area
        # (/tmp/pytest-of-root) is root-only; unix socket paths must also stay under ~100 bytes.
        if self._account is not None and os.path.isdir("/tmp"):
            return "/tmp"
        return None

    def _path(self, *parts: str) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir.joinpath(*parts)

    def _child_env(self) -> dict[str, str]:
        # PG*/MYSQL* variables of the developer's shell must not redirect our tools, and HOME must
        # be somewhere the service account can read.  C locale: log messages we look for are English.
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("PG", "MYSQL", "MARIADB", "LC_"))
        }
        env.update(HOME=str(self._path()), LC_ALL="C", LANG="C")
        return env

    def _as_account(self) -> dict[str, Any]:
        """``subprocess`` keyword arguments that run a child as the service account."""
        if self._account is None:
            return {}
        return {
            "user": self._account.pw_uid,
            "group": self._account.pw_gid,
            # Without this the child would keep root's supplementary groups.
            "extra_groups": [],
        }

    def _run(self, argv: Sequence[str], log: Path, what: str) -> None:
        """Run a setup command as the service account, appending its output to *log*."""
        start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            try:
                proc = subprocess.run(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=self._path(),
                    env=self._child_env(),
                    timeout=TIMEOUT,
                    **self._as_account(),
                )
            except subprocess.TimeoutExpired:
                raise ServerError(
                    f"{self.backend}: {what} took more than {TIMEOUT:.0f}s:\n{_tail(log, start)}"
                ) from None
        if proc.returncode != 0:
            raise ServerError(
                f"{self.backend}: {what} failed (exit status {proc.returncode}):\n"
                f"{_tail(log, start)}"
            )

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)


def _version_key(bindir: str) -> tuple[int, ...]:
    # /usr/lib/postgresql/<version>/bin; "9.6" sorts below "15".
    name = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", name)) or (0,)


class PostgresServer(_Server):
    """A PostgreSQL cluster in a temporary directory, run with ``pg_ctl``."""

    backend = "PostgreSQL"
    slug = "pg"
    service_account = "postgres"
    default_driver = "postgresql"
    programs: ClassVar[tuple[str, ...]] = ("initdb", "pg_ctl", "postgres")

    def __init__(self, base_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(base_dir)
        self.bindir: Path | None = None

    @classmethod
    def find_bindir(cls) -> Path | None:
        """The first directory holding all of initdb, pg_ctl and postgres.

        PATH first, so that a developer can choose a version; then Debian's
        ``/usr/lib/postgresql/*/bin``, newest version first (those are not on PATH).
        """
        versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
        for directory in _path_dirs() + [Path(d) for d in versioned]:
            if all(_executable(directory / program) for program in cls.programs):
                return directory
        return None

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if cls.find_bindir() is None:
            return False, (
                "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
                "/usr/lib/postgresql/*/bin; install Debian's 'postgresql' package "
                "(bash .ci/run does)"
            )
        return True, ""

    def _program(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _initialize(self) -> None:
        self.bindir = self.find_bindir()
        pwfile = self._path("pwfile")
        pwfile.write_text(self.password + "\n")
        pwfile.chmod(0o600)
        self._chown(pwfile)
        try:
            self._run(
                [
                    self._program("initdb"),
                    "--pgdata", str(self._path("data")),
                    "--username", self.user,
                    "--pwfile", str(pwfile),
                    # Also keeps initdb from warning about "trust"; pg_hba.conf is rewritten below.
                    "--auth", "scram-sha-256",
                    "--encoding", "UTF8",
                    "--locale", "C",
                    # A throwaway cluster need not survive a power cut: skip the fsyncs.
                    "--no-sync",
                ],
                self._path("initdb.log"),
                "initdb",
            )
        finally:
            pwfile.unlink()
        # Password (SCRAM) authentication everywhere, so that tests see what a deployment sees and
        # a wrong password is rejected.  The server only listens on 127.0.0.1.
        self._path("data", "pg_hba.conf").write_text(
            "# Written by tests/servers.py.\n"
            "local  all  all                scram-sha-256\n"
            "host   all  all  127.0.0.1/32  scram-sha-256\n"
        )
        with open(self._path("data", "postgresql.conf"), "a") as conf:
            conf.write(
                "\n# Added by tests/servers.py: a private, disposable test server.\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self._path()}'\n"
                # Speed: nothing here needs to survive a crash.
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                # No background vacuum taking locks while tests measure locking behaviour.
                "autovacuum = off\n"
                # max_locks_per_transaction stays at its stock default on purpose: a migration
                # that touches many tables in one transaction must fit in what a real server
                # allows, or the tests would hide "out of shared memory" failures.
            )

    def _launch(self) -> None:
        log = self._path("postgres.log")
        start = log.stat().st_size if log.exists() else 0
        try:
            self._run(
                [
                    self._program("pg_ctl"), "start",
                    "--pgdata", str(self._path("data")),
                    "--log", str(log),
                    "--wait", "--timeout", str(int(TIMEOUT)), "--silent",
                    # The port is the only setting that changes between attempts.
                    "-o", f"-p {self.port}",
                ],
                self._path("pg_ctl.log"),
                f"pg_ctl start on port {self.port}",
            )
        except ServerError as exc:
            text = _tail(log, start)
            if "in use" in text or "could not bind" in text:
                raise _PortTaken(str(exc)) from None
            raise ServerError(f"{exc}\n--- server log ---\n{text}") from None

    def _shutdown(self) -> None:
        if self.bindir is None:
            return
        if not self._path("data", "postmaster.pid").exists():
            # pg_ctl cannot stop a server whose data directory someone else deleted (a cleanup
            # of /tmp during the session); the postmaster would only notice within a minute.
            self._quit_postmaster()
            return
        argv = [self._program("pg_ctl"), "stop", "--pgdata", str(self._path("data")), "--wait",
                "--timeout", str(int(TIMEOUT)), "--silent"]
        try:
            # "fast" disconnects clients (e.g. a test's leaked engine) instead of waiting for them.
            self._run(argv + ["--mode", "fast"], self._path("pg_ctl.log"), "pg_ctl stop")
        except ServerError:
            self._run(argv + ["--mode", "immediate"], self._path("pg_ctl.log"), "pg_ctl stop")

    def _quit_postmaster(self) -> None:
        """Send SIGQUIT (immediate shutdown) to our postmaster, found by its command line."""
        data = str(self._path("data"))
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # Only the postmaster has our data directory on its command line, not its workers.
            if argv[0].endswith(b"postgres") and data.encode() in argv:
                try:
                    os.kill(int(proc.name), signal.SIGQUIT)
                except OSError:
                    pass

    def _admin_database(self) -> str:
        return "postgres"

    def _create_sql(self, name: str) -> Sequence[str]:
        return [f'CREATE DATABASE "{name}"']

    def _drop(self, conn: sa.engine.Connection, name: str) -> None:
        # A test may leave a connection open (a subprocess, an undisposed engine); FORCE
        # (PostgreSQL 13+) disconnects it instead of failing the drop.
        if int(conn.execute(sa.text("SHOW server_version_num")).scalar() or 0) >= 130000:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


class MariaDBServer(_Server):
    """A MariaDB server in a temporary directory: ``mariadb-install-db``, then ``mariadbd``."""

    backend = "MariaDB"
    slug = "mariadb"
    service_account = "mysql"
    default_driver = "mysql+pymysql"
    installers: ClassVar[tuple[str, ...]] = ("mariadb-install-db", "mysql_install_db")
    daemons: ClassVar[tuple[str, ...]] = ("mariadbd", "mysqld")
    #: Where distributions put the daemon; /usr/sbin is not on an ordinary user's PATH.
    extra_dirs: ClassVar[tuple[str, ...]] = ("/usr/sbin", "/usr/bin", "/usr/libexec",
                                             "/usr/local/mysql/bin")

    def __init__(self, base_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(base_dir)
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def find_programs(cls) -> tuple[Path, Path] | None:
        """``(installer, daemon)``, each the first found on PATH or in the usual places."""
        directories = _path_dirs() + [Path(d) for d in cls.extra_dirs]

        def first(names: Sequence[str]) -> Path | None:
            for name in names:
                for directory in directories:
                    if _executable(directory / name):
                        return directory / name
            return None

        installer, daemon = first(cls.installers), first(cls.daemons)
        if installer is None or daemon is None:
            return None
        return installer, daemon

    @classmethod
    def available(cls) -> tuple[bool, str]:
        if cls.find_programs() is None:
            return False, (
                "MariaDB server binaries (mariadb-install-db and mariadbd) not found on PATH or "
                "in /usr/sbin; install Debian's 'mariadb-server' package (bash .ci/run does)"
            )
        try:
            import pymysql  # noqa: F401
        except ImportError:
            return False, "PyMySQL is not installed (it is in requirements/*.txt)"
        return True, ""

    def _socket(self) -> Path:
        return self._path("mysqld.sock")

    def _initialize(self) -> None:
        programs = self.find_programs()
        assert programs is not None
        self._installer, self._daemon = programs
        self._run(
            [
                str(self._installer),
                # Must come first: ignore /etc/mysql/my.cnf and ~/.my.cnf of this machine.
                "--no-defaults",
                # Where the installer looks for the daemon and its share/ files.
                f"--basedir={self._daemon.parent.parent}",
                f"--datadir={self._path('data')}",
                # root@localhost gets an empty password, usable only through our private socket
                # (the directory is the service account's, mode 0700): we use it once, below.
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--skip-name-resolve",
                # Passed through to the bootstrap server: a small redo log, quick to create.
                "--innodb-log-file-size=16M",
            ],
            self._path("install.log"),
            "mariadb-install-db",
        )

    def _server_argv(self) -> list[str]:
        return [
            str(self._daemon),
            "--no-defaults",
            f"--datadir={self._path('data')}",
            f"--tmpdir={self._path()}",
            f"--socket={self._socket()}",
            f"--pid-file={self._path('mysqld.pid')}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--skip-name-resolve",
            # What Debian's my.cnf sets; --no-defaults would leave latin1.
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
            # Small: each stack's test run starts its own servers on the same machine.
            "--innodb-buffer-pool-size=64M",
            "--innodb-log-file-size=16M",
            # Speed: nothing here needs to survive a crash.
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
        ]

    def _launch(self) -> None:
        import pymysql

        log = self._path("mariadbd.log")
        start = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            self._process = subprocess.Popen(
                self._server_argv(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self._path(),
                env=self._child_env(),
                # Its own session: a Ctrl-C in the terminal reaches pytest, whose teardown then
                # shuts the server down in order, rather than killing the server mid-test.
                start_new_session=True,
                **self._as_account(),
            )
        deadline = time.monotonic() + TIMEOUT
        while True:
            status = self._process.poll()
            if status is not None:
                self._process = None
                text = _tail(log, start)
                if "in use" in text or "Can't start server: Bind" in text:
                    raise _PortTaken(text)
                raise ServerError(
                    f"MariaDB: mariadbd exited with status {status} on port {self.port}:\n{text}"
                )
            # Knock on the socket ourselves first: PyMySQL leaks its socket object (a
            # ResourceWarning, fatal under filterwarnings=error) when a unix socket connect fails.
            if _unix_socket_accepts(self._socket()):
                try:
                    pymysql.connect(
                        unix_socket=str(self._socket()), user="root", password="",
                        connect_timeout=2,
                    ).close()
                    return
                except pymysql.err.MySQLError:
                    pass
            if time.monotonic() > deadline:
                raise ServerError(
                    f"MariaDB: not ready after {TIMEOUT:.0f}s on port {self.port}:\n"
                    f"{_tail(log, start)}"
                )
            time.sleep(0.05)

    def _after_launch(self) -> None:
        import pymysql

        conn = pymysql.connect(unix_socket=str(self._socket()), user="root", password="")
        try:
            with conn.cursor() as cur:
                # Anonymous accounts would match before ours for some hosts (MySQL's classic
                # trap); this server has no use for them.
                cur.execute("SELECT User, Host FROM mysql.user WHERE User = ''")
                for user, host in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (user, host))
                cur.execute(f"CREATE USER '{self.user}'@'%%' IDENTIFIED BY %s", (self.password,))
                cur.execute(f"GRANT ALL PRIVILEGES ON *.* TO '{self.user}'@'%' WITH GRANT OPTION")
            conn.commit()
        finally:
            conn.close()

    def _shutdown(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # mariadbd's orderly shutdown
                # Not long: its files are deleted next, so a clean shutdown is only a courtesy.
                process.wait(10)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # Never leave it running, whatever happened above (a timeout, a second Ctrl-C while
            # waiting): mariadbd told to stop while it was still starting up has been seen to
            # hang with SIGTERM blocked in every thread.
            if process.poll() is None:
                process.kill()
                process.wait()

    def _admin_database(self) -> str:
        return ""

    def _create_sql(self, name: str) -> Sequence[str]:
        return [f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"]

    def _drop(self, conn: sa.engine.Connection, name: str) -> None:
        # A connection left open in a transaction holds metadata locks that would make DROP
        # DATABASE wait forever; disconnect whoever still uses the database first.
        ids = conn.execute(
            sa.text("SELECT id FROM information_schema.processlist WHERE db = :n AND id != "
                    "CONNECTION_ID()"),
            {"n": name},
        ).scalars().all()
        for connection_id in ids:
            try:
                conn.execute(sa.text(f"KILL CONNECTION {int(connection_id)}"))
            except sa.exc.OperationalError:
                pass  # it disconnected on its own meanwhile
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))


# -- pytest plugin ------------------------------------------------------------------------------

#: Servers started in this session, for the summary line at the end.
_started: list[_Server] = []


def _start_or_skip(cls: type[_Server], opt_out_var: str) -> _Server:
    if _env_flag(opt_out_var):
        pytest.skip(f"{opt_out_var}=1 is set: {cls.backend} tests skipped on purpose")
    ok, reason = cls.available()
    if not ok:
        if _env_flag(REQUIRE_SERVERS_VAR):
            pytest.fail(f"{reason} ({REQUIRE_SERVERS_VAR}=1 is set)", pytrace=False)
        pytest.skip(reason)
    _stop_servers_on_sigterm()
    server = cls()
    # Binaries present but the server does not start: that is an error, never a skip.
    server.start()
    _started.append(server)
    return server


def _stop_servers_on_sigterm() -> None:
    """Make SIGTERM end the session like Ctrl-C does: with teardown, so the servers stop.

    By default SIGTERM kills Python outright, skipping fixture teardown and atexit, and would leave
    the servers running with their files in /tmp.  CI systems cancel jobs with SIGTERM, and
    scripts/test passes its Ctrl-C on as SIGTERM (a shell's background jobs ignore SIGINT).
    A handler someone else installed is left alone.
    """
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:
        pass  # not the main thread: nothing we can do


def _database_name(request: pytest.FixtureRequest) -> str:
    # The test's name makes a leftover database easy to trace; the suffix makes it unique.
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"t_{slug}_{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started on first use and stopped at the end."""
    server = _start_or_skip(PostgresServer, NO_PG_VAR)
    assert isinstance(server, PostgresServer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgresql_url(
    postgresql_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    name = _database_name(request)
    url = postgresql_server.create_database(name)
    yield url
    postgresql_server.drop_database(name)


@pytest.fixture(scope="session")
def mariadb_server() -> Iterator[MariaDBServer]:
    """The session's MariaDB server, started on first use and stopped at the end."""
    server = _start_or_skip(MariaDBServer, NO_MARIADB_VAR)
    assert isinstance(server, MariaDBServer)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mariadb_url(mariadb_server: MariaDBServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new, empty MariaDB database, dropped after the test."""
    name = _database_name(request)
    url = mariadb_server.create_database(name)
    yield url
    mariadb_server.drop_database(name)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line per server started, so a slow or unexpected server version is visible."""
    for server in _started:
        terminalreporter.write_line(
            f"{server.backend} test server: {server.version.split(' on ')[0]}, "
            f"started in {server.startup_seconds or 0:.1f}s"
        )
