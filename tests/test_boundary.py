"""The error boundary is total: whatever goes wrong outside the user's own code is one line.

Known causes have their sentence (tests/test_errors.py); this module makes each layer of the
package raise something nobody foresaw (a ``RuntimeError`` put in place of one of its functions,
in the real command-line process) and checks that both front-ends still end with one
``Error: unexpected ...`` line that says how to get the traceback, exit status 1, no traceback,
and the database as it was.  ``FLASK_MIGRATE_TRACEBACK=1`` then shows the traceback.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import Project, Result
from tests.guarantee_helpers import create_table, state, write_revision
from tests.workflow_helpers import error_lines

#: Layer -> (module, function replaced by one that raises, the command that reaches it).
FAULTS = {
    "config": ("flask_migrate.commands", "build_config", "upgrade"),
    "folder": ("flask_migrate.folder", "read_env", "upgrade"),
    "runtime": ("flask_migrate.runtime", "databases", "upgrade"),
    "lock": ("flask_migrate.runtime.guard", "acquire", "upgrade"),
    "transactions": ("flask_migrate.runtime.guard", "sqlite_transactions", "upgrade"),
    "output": ("flask_migrate.plan", "print_status", "status"),
}

# Replaces one function, then runs a front-end as its own command line would.
RUNNER = '''
import importlib
import runpy
import sys

module, name, front, *args = sys.argv[1:]


def fault(*args, **kwargs):
    raise RuntimeError("injected fault")


setattr(importlib.import_module(module), name, fault)
if front == "flask":
    from flask.cli import main

    sys.argv = ["flask", "db", *args]
    main()
else:
    sys.argv = ["manage.py", "db", *args]
    runpy.run_path("manage.py", run_name="__main__")
'''


def run_with_fault(project: Project, layer: str, front: str, **env: str) -> Result:
    module, name, command = FAULTS[layer]
    runner = project.path / "with_fault.py"
    runner.write_text(RUNNER, encoding="utf-8")
    args = [sys.executable, str(runner), module, name, front, command]
    completed = subprocess.run(
        args, cwd=project.path, env={**os.environ, **project.env, **env},
        capture_output=True, text=True, timeout=120,
    )
    return Result(args, completed.returncode, completed.stdout, completed.stderr)


@pytest.mark.parametrize("layer", sorted(FAULTS))
def test_an_unexpected_exception_is_one_line(make_project, front, layer):
    project = make_project("guarded")
    assert project.db("init").returncode == 0
    write_revision(project, "r1", None, create_table("t1"))
    assert project.db("upgrade").returncode == 0
    write_revision(project, "r2", "r1", create_table("t2"))
    before = state(project.url)

    result = run_with_fault(project, layer, front)
    assert result.returncode == 1, str(result)
    assert "Traceback" not in result.stderr, str(result)
    [error] = error_lines(result)
    assert error.startswith("Error: unexpected RuntimeError: injected fault; "), str(result)
    assert "FLASK_MIGRATE_TRACEBACK=1" in error, str(result)
    assert state(project.url) == before == ({"t1"}, {"r1"}), str(result)

    shown = run_with_fault(project, layer, front, FLASK_MIGRATE_TRACEBACK="1")
    assert shown.returncode != 0, str(shown)
    assert "Traceback" in shown.stderr and "injected fault" in shown.stderr, str(shown)
    assert state(project.url) == before, str(shown)
