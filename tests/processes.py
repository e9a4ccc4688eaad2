"""Command lines that run in the background while a test acts on them.

A test starts a real ``db`` command with :class:`Run` (or the ``runs`` fixture, which also ends
every run still going when the test ends), waits until the command has reached a given point
(:meth:`Run.wait_for`: a file its revision creates, a line it printed), then stops it or lets it
finish, and reads what it did as a :class:`tests.conftest.Result`.

The output goes to files, not pipes: the test can read what has been printed so far without
blocking, and a command that prints a lot never fills a pipe nobody reads.  Each run is the
leader of a process group of its own, so that :meth:`Run.kill` reaches the whole of it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.conftest import Project, Result


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = 30,
    report: Callable[[], str] = str,
) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds, with ``report()``.

    The timeout only bounds a test that went wrong (generous, for a loaded machine): no test
    measures anything by it.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{report()}"
        time.sleep(0.05)


class Run:
    """``project.command(front, *args)`` running in the background, its output in files."""

    def __init__(
        self, project: Project, front: str, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.command = project.command(front, *args)
        self.stdout_path, self.stderr_path = self._output_files(project.path, front)
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                self.command, cwd=project.path, env=project.environment(env),
                stdout=stdout, stderr=stderr, start_new_session=True,
            )

    @staticmethod
    def _output_files(folder: Path, front: str) -> tuple[Path, Path]:
        number = 0
        while (folder / f"run-{front}-{number}.stderr").exists():
            number += 1
        stem = folder / f"run-{front}-{number}"
        return stem.with_suffix(".stdout"), stem.with_suffix(".stderr")

    def stderr(self) -> str:
        """What the command has written to stderr so far."""
        return self.stderr_path.read_text()

    def printed(self, text: str) -> Callable[[], bool]:
        """A condition for :meth:`wait_for`: ``text`` is in what stderr has had so far."""
        return lambda: text in self.stderr()

    def wait_for(self, condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Poll ``condition`` while the command runs; fail if it ends or ``timeout`` passes
        first."""

        def reached() -> bool:
            if condition():
                return True
            assert self.process.poll() is None, f"ended before {what}\n{self.result()}"
            return False

        wait_until(reached, what, timeout, report=self.stderr)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the command's own process, as a container runtime would."""
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL to the whole process group, as the kernel's OOM killer or ``docker kill``
        would: nothing of the run's own gets to run."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def result(self, timeout: float = 60) -> Result:
        """Wait for the command to end; what it did."""
        self.process.wait(timeout=timeout)
        return Result(
            self.command, self.process.returncode, self.stdout_path.read_text(), self.stderr()
        )

    def stop(self) -> None:
        """Kill the command if it still runs (the end of a test that went wrong)."""
        if self.process.poll() is None:
            self.kill()


@pytest.fixture
def runs() -> Iterator[Callable[..., Run]]:
    """``runs(project, front, *args, env=...)`` starts a :class:`Run`; any still running at the
    end of the test are killed."""
    started: list[Run] = []

    def start(project: Project, front: str, *args: str, env: dict[str, str] | None = None) -> Run:
        run = Run(project, front, *args, env=env)
        started.append(run)
        return run

    yield start
    for run in started:
        run.stop()
