"""The runner of the tests' command lines: each run a fork of one warm interpreter.

A fresh ``python -m flask db ...`` spends most of its ~0.6 s of CPU starting the interpreter and
importing Flask, SQLAlchemy, Alembic and this package; the suite runs hundreds of them.  So
:class:`Zygote` starts, once per pytest session, a *fresh* interpreter running this file
(``python tests/zygote.py``), which imports those libraries (:data:`PRELOAD`) and waits.  Each
:meth:`Zygote.run` asks it for a run; it forks, and the fork runs the real CLI -
``runpy.run_module("flask")`` or ``manage.py`` as ``__main__`` - in a state that is the one a
fresh ``python -m flask`` / ``python manage.py`` started from pytest would have:

- the run's working directory, environment, ``sys.argv`` and ``sys.path`` (``sys.path[0]`` the
  directory Python would put there, the rest that of a fresh interpreter with the same
  ``PYTHONPATH``); fds 0/1/2 are pytest's stdin (or a pipe of the run's input) and two
  temporary files, with new ``sys.stdin/stdout/stderr`` over them; no other fd;
- nothing of pytest: the warm interpreter is not a fork of pytest but a process of its own
  (pytest's warning filters, logging handlers, signal handlers, threads, open connections and
  imported test modules are not there to undo), and it never imports an application;
- the end of a real interpreter: ``SystemExit``, an uncaught exception (the traceback through
  ``sys.excepthook``) or ``KeyboardInterrupt`` (death by SIGINT) give CPython's exit status,
  then threads are joined, ``atexit`` functions run and stdio flushed.

Still a process per run, so a crash, ``sys.exit`` or an application's module state cannot reach
pytest or the next run.  The libraries were imported before the run, under the warm
interpreter's environment: so :class:`Zygotes` keeps one warm interpreter per set of the
variables that act at startup or import (``PYTHON*``, the locale, SQLAlchemy 1.4's
``SQLALCHEMY_WARN_20``...), started with the run's values.  What remains different from a fresh
interpreter: the runs of one warm interpreter share its hash seed (unless PYTHONHASHSEED fixes
one anyway), ``sys.flags.dont_write_bytecode`` is its own, and a library imported before the
run may be one that the run would not have imported.

The warm interpreter forks a "runner" per request, which forks the run and waits for it, so
that the run's exit status can be sent back (only a parent can wait for a process); requests
may come from several threads at once.  It ends when pytest closes its stdin (or dies).
"""
from __future__ import annotations

import sys

if __name__ == "__main__":
    # A fresh interpreter's sys.path, without the first entry (the script's folder, here tests/;
    # each run puts its own there).
    FRESH_PATH = sys.path[1:]
    del sys.path[0]

import atexit
import errno
import io
import json
import locale
import os
import runpy
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import traceback
import types
import warnings
from importlib.machinery import SourceFileLoader
from pathlib import Path
from typing import Any, Mapping, Sequence

#: What a CLI run imports that costs: the warm interpreter imports each that this stack has.
PRELOAD = (
    "click", "flask", "flask.cli", "werkzeug", "jinja2", "sqlalchemy", "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite", "sqlalchemy.ext.asyncio", "mako.template", "alembic",
    "alembic.command", "alembic.config", "alembic.script", "alembic.runtime.migration",
    "alembic.runtime.environment", "alembic.autogenerate", "alembic.operations",
    "alembic.ddl", "flask_sqlalchemy", "flask_script", "flask_script_ng", "dotenv",
    "flask_migrate", "flask_migrate.click_cli", "flask_migrate.script_cli",
    "flask_migrate.linter", "flask_migrate.plan", "flask_migrate.diagnosis",
    "flask_migrate.repair", "flask_migrate.autogenerate", "flask_migrate.testing",
)

#: Variables that act when an interpreter starts or a library is imported, not when a command
#: reads them: these, any other ``PYTHON*`` and the locale's are the same in a run and in the
#: warm interpreter it is forked from (:class:`Zygotes`).  PYTHONDONTWRITEBYTECODE is the
#: exception: a run sets ``sys.dont_write_bytecode`` from it.
_IMPORT_TIME = frozenset({"SQLALCHEMY_WARN_20", "SQLALCHEMY_SILENCE_UBER_WARNING"})
_PER_RUN = frozenset({"PYTHONDONTWRITEBYTECODE"})

_MESSAGE = 1 << 20  # the largest request or reply, in bytes


def _startup_sensitive(name: str) -> bool:
    if name in _PER_RUN:
        return False
    return name.startswith(("PYTHON", "LC_")) or name == "LANG" or name in _IMPORT_TIME


# ---------------------------------------------------------------------------------------------
# pytest's side
# ---------------------------------------------------------------------------------------------


class ZygoteError(RuntimeError):
    """The warm interpreter failed (not the run: a run's failure is its exit status)."""


class Zygotes:
    """The warm interpreters of a session, one per set of startup variables (:func:`signature`)
    that runs have: each is started with those, as a fresh interpreter of the run would be."""

    #: At most this many warm interpreters; the runs of any further set are real subprocesses.
    LIMIT = 4

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = {name: value for name, value in env.items() if not _startup_sensitive(name)}
        self._lock = threading.Lock()
        self._zygotes: dict[tuple[tuple[str, str], ...], Zygote] = {}

    def get(self, env: Mapping[str, str]) -> Zygote | None:
        """The warm interpreter for runs with ``env``; None when the limit is reached."""
        key = signature(env)
        with self._lock:
            if key not in self._zygotes:
                if len(self._zygotes) >= self.LIMIT:
                    return None
                self._zygotes[key] = Zygote({**self.env, **dict(key)})
            return self._zygotes[key]

    def close(self) -> None:
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()


def signature(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The variables of ``env`` that act when an interpreter starts or imports a library."""
    return tuple(sorted((name, value) for name, value in env.items()
                        if _startup_sensitive(name)))


class Zygote:
    """The client of one warm interpreter, started at the first :meth:`run`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._folder: str | None = None
        self._address = ""
        self._log: Any = None
        self._failure = ""

    def run(
        self, kind: str, target: str, args: Sequence[str], *, cwd: Path, env: Mapping[str, str],
        stdin: str | None, timeout: float, command: list[str],
    ) -> tuple[int, str, str]:
        """Run ``python -m TARGET ARGS`` (kind ``"module"``) or ``python TARGET ARGS`` (kind
        ``"script"``) in ``cwd`` with ``env``; (exit status, stdout, stderr) as
        ``subprocess.run(..., capture_output=True, text=True)`` gives them, and its
        ``TimeoutExpired`` (``command`` is its command line) when ``timeout`` passes."""
        self._start()
        request = {"kind": kind, "target": target, "args": list(args), "cwd": str(cwd),
                   "env": dict(env), "command": command}
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
            feed = self._stdin(stdin)
            try:
                connection.connect(self._address)
                socket.send_fds(connection, [json.dumps(request).encode()],
                                [feed, out.fileno(), err.fileno()])
            finally:
                if feed != 0:
                    os.close(feed)
            connection.settimeout(timeout)
            pid = None
            try:
                pid = self._reply(connection, "pid")
                status = self._reply(connection, "status")
            except socket.timeout:
                if pid is None:
                    raise ZygoteError("the warm interpreter did not answer") from None
                self._kill(pid)
                connection.settimeout(30)
                self._reply(connection, "status")
                raise subprocess.TimeoutExpired(
                    command, timeout, output=_text(out), stderr=_text(err)
                ) from None
            except BaseException:
                # As subprocess.run: an interrupted wait (Ctrl-C) does not leave the run behind.
                if pid is not None:
                    self._kill(pid)
                raise
            return status, _text(out), _text(err)

    def close(self) -> None:
        """End the warm interpreter (closing its stdin) and remove its socket."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _start(self) -> None:
        with self._lock:
            if self._failure:
                raise ZygoteError(self._failure)
            if self._process is not None:
                if self._process.poll() is None:
                    return
                self._failure = f"the warm interpreter has ended:\n{self._log_text()}"
                raise ZygoteError(self._failure)
            try:
                self._launch()
            except ZygoteError as error:
                # Every later run fails the same way: none may use a doubtful interpreter.
                self._failure = str(error)
                self._stop()
                raise

    def _launch(self) -> None:
        """Start the warm interpreter; :class:`ZygoteError` unless it is ready, with nothing
        printed or warned by its imports."""
        # A short folder name: a socket's path has a limit of about a hundred bytes.
        self._folder = tempfile.mkdtemp(prefix="fm-zygote-")
        self._address = os.path.join(self._folder, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(self._address)
        listener.listen(64)
        self._log = tempfile.TemporaryFile()
        try:
            # Not a fork of pytest: a fresh interpreter, started as a CLI run would be.
            self._process = subprocess.Popen(
                [sys.executable, __file__, str(listener.fileno())], env=self.env,
                cwd=self._folder, stdin=subprocess.PIPE, stdout=self._log,
                stderr=self._log, pass_fds=[listener.fileno()],
            )
        finally:
            listener.close()
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as connection:
            connection.settimeout(120)
            try:
                connection.connect(self._address)
                connection.send(json.dumps({"kind": "hello"}).encode())
                hello = self._reply(connection, "hello")
            except (OSError, ZygoteError) as error:
                raise ZygoteError(f"the warm interpreter did not start ({error}):\n"
                                  f"{self._log_text()}") from None
        if hello or self._log_text():
            # An import that printed or warned does so in every fresh run, but would not
            # in a fork: these runs cannot be told apart from fresh ones then.
            raise ZygoteError(
                "importing the libraries printed or warned, which a forked run would not "
                "repeat; set FLASK_MIGRATE_TEST_SUBPROCESS=1 or drop the module from "
                f"tests/zygote.py PRELOAD:\n{hello}\n{self._log_text()}"
            )

    def _stdin(self, data: str | None) -> int:
        """The fd the run reads: pytest's own stdin, as a subprocess inherits it, or a pipe
        that holds ``data`` (a temporary file when it would not fit in a pipe)."""
        if data is None:
            return 0
        encoded = data.encode(locale.getpreferredencoding(False))
        if len(encoded) <= 65536:
            read, write = os.pipe()
            try:
                os.write(write, encoded)
            finally:
                os.close(write)
            return read
        with tempfile.TemporaryFile() as file:
            file.write(encoded)
            file.flush()
            file.seek(0)
            return os.dup(file.fileno())

    def _reply(self, connection: socket.socket, key: str) -> Any:
        data = connection.recv(_MESSAGE)
        if not data:
            raise ZygoteError(f"the warm interpreter hung up:\n{self._log_text()}")
        reply = json.loads(data)
        if "error" in reply:
            raise ZygoteError(reply["error"])
        return reply[key]

    @staticmethod
    def _kill(pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def _log_text(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


def _text(file: Any) -> str:
    """A run's captured output, decoded as ``subprocess.run(text=True)`` decodes it."""
    file.seek(0)
    data = file.read().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------------------------------------
# The warm interpreter's side
# ---------------------------------------------------------------------------------------------


def _serve(listener_fd: int) -> None:
    listener = socket.socket(fileno=listener_fd)
    fresh_signals = {number: signal.getsignal(number) for number in _signals()}
    shown = _preload()
    while True:
        ready, _, _ = select.select([listener, sys.stdin.fileno()], [], [], 1)
        _reap(block=False)
        if sys.stdin.fileno() in ready:
            _reap(block=True)
            return  # pytest closed our stdin, or has gone
        if not ready:
            continue
        try:
            connection, _ = listener.accept()
        except OSError as error:
            if error.errno in (errno.EINTR, errno.EAGAIN):
                continue
            raise
        if threading.active_count() != 1:
            # A fork copies only the forking thread: locks held by another would stay held.
            connection.send(json.dumps({"error": "the warm interpreter has threads"}).encode())
            connection.close()
            continue
        if os.fork() == 0:
            try:
                listener.close()
                _runner(connection, fresh_signals, shown)
            finally:
                os._exit(0)
        connection.close()


def _reap(block: bool) -> None:
    """Wait for the runners that have ended (for all of them when ``block``): a runner waited
    for adds its CPU time and its run's to ours, and so to pytest's (what ``time`` reports)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signals() -> list[int]:
    return [number for number in signal.valid_signals()
            if number not in (signal.SIGKILL, signal.SIGSTOP)]


def _preload() -> list[str]:
    """Import :data:`PRELOAD`; what importing them showed (warnings) as text."""
    shown: list[str] = []
    original = warnings.showwarning

    def record(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
        shown.append(warnings.formatwarning(message, category, filename, lineno).strip())

    warnings.showwarning = record
    try:
        for name in PRELOAD:
            try:
                __import__(name)
            except ImportError:
                pass  # not in this stack
    finally:
        warnings.showwarning = original
    return shown


def _runner(connection: socket.socket, fresh_signals: dict[int, Any], shown: list[str]) -> None:
    """Serve one request: fork the run, tell its pid, wait for it, tell its exit status."""
    try:
        data, fds, _, _ = socket.recv_fds(connection, _MESSAGE, 3)
        request = json.loads(data)
        if request["kind"] == "hello":
            connection.send(json.dumps({"hello": "\n".join(shown)}).encode())
            return
        pid = os.fork()
        if pid == 0:
            _child(request, fds, fresh_signals)  # does not return
        for fd in fds:
            os.close(fd)
        connection.send(json.dumps({"pid": pid}).encode())
        _, wait_status = os.waitpid(pid, 0)
        connection.send(json.dumps({"status": os.waitstatus_to_exitcode(wait_status)}).encode())
    except BaseException:
        try:
            connection.send(json.dumps({"error": traceback.format_exc()}).encode())
        except OSError:
            pass


def _child(request: dict[str, Any], fds: list[int], fresh_signals: dict[int, Any]) -> None:
    """Become the run, and exit with its exit status."""
    status = 1
    try:
        for number, handler in fresh_signals.items():
            if handler is not None and signal.getsignal(number) is not handler:
                signal.signal(number, handler)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.dont_write_bytecode = bool(os.environ.get("PYTHONDONTWRITEBYTECODE"))
        sys.orig_argv = list(request["command"])
        buffered = not sys.stdout.write_through  # False with -u or PYTHONUNBUFFERED
        sys.stdin, sys.stdout, sys.stderr = (
            _stdio(0, "r", sys.stdin, buffered), _stdio(1, "w", sys.stdout, buffered),
            _stdio(2, "w", sys.stderr, buffered),
        )
        sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
        status = _run(request)
    finally:
        os._exit(status)


def _stdio(fd: int, mode: str, like: Any, buffered: bool) -> io.TextIOWrapper:
    """A new ``sys.std*`` over ``fd``, made as CPython's ``create_stdio`` makes its own (``like``
    gives the encoding and error handler, which the warm interpreter chose from the same
    locale and variables)."""
    buffering = -1 if buffered or mode == "r" else 0
    buffer = io.open(fd, mode + "b", buffering, closefd=False)
    raw = buffer.raw if buffering else buffer
    raw.name = {0: "<stdin>", 1: "<stdout>", 2: "<stderr>"}[fd]
    text = io.TextIOWrapper(
        buffer, like.encoding, like.errors, newline="\n",
        line_buffering=buffered and (raw.isatty() or fd == 2), write_through=not buffered,
    )
    text.mode = mode  # type: ignore[misc]
    return text


def _run(request: dict[str, Any]) -> int:
    """Run the CLI as ``__main__`` and end as the interpreter would: the exit status."""
    interrupted = False
    try:
        status = 0
        _main(request)
    except SystemExit as exit:
        status = _exit_status(exit.code)
    except KeyboardInterrupt:
        _excepthook()
        interrupted = True
        status = 1
    except BaseException:
        _excepthook()
        status = 1
    # Py_FinalizeEx: wait for the threads, run the atexit functions, flush stdout and stderr.
    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except BaseException:
        _excepthook()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            status = 120
    if interrupted:
        # CPython ends by the signal itself, so that the parent sees a death by SIGINT.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return status


def _main(request: dict[str, Any]) -> None:
    cwd = os.getcwd()
    if request["kind"] == "module":
        # python -m: sys.path[0] is the working directory, argv[0] the module's file.
        sys.path[:] = [cwd, *FRESH_PATH]
        sys.argv = ["-m", *request["args"]]
        main = sys.modules["__main__"] = types.ModuleType("__main__")
        main.__builtins__ = __builtins__
        # What -m itself calls (runpy.run_module would differ in a traceback's frames).
        runpy._run_module_as_main(request["target"])  # type: ignore[attr-defined]
        return
    # python SCRIPT: sys.path[0] is the script's folder, argv[0] the script as given, __file__
    # and the code's file name its absolute path.
    path = os.path.abspath(request["target"])
    sys.path[:] = [os.path.dirname(path), *FRESH_PATH]
    sys.argv = [request["target"], *request["args"]]
    main = sys.modules["__main__"] = types.ModuleType("__main__")
    main.__file__ = path
    main.__cached__ = None  # type: ignore[attr-defined]
    main.__builtins__ = __builtins__
    main.__loader__ = SourceFileLoader("__main__", path)
    with open(path, "rb") as file:
        code = compile(file.read(), path, "exec")
    exec(code, main.__dict__)


def _exit_status(code: Any) -> int:
    """The exit status of ``SystemExit(code)``, printing a message as CPython does."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def _excepthook() -> None:
    """Print the exception being handled as an uncaught one, without this file's frames."""
    kind, value, tb = sys.exc_info()
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    assert kind is not None and value is not None
    try:
        sys.excepthook(kind, value.with_traceback(tb), tb)
    except BaseException:
        pass


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
