"""The distributions ship the templates (SPEC section 8: package data in wheel and sdist).

The sdist and the wheel are built offline from a copy of the source tree (``python -m build
--no-isolation``, with the venv's own setuptools), and their file lists are compared with
``flask_migrate/templates/``.  Packaging does not depend on the stack, so this runs once, on
the modern stack.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import STACK

pytestmark = pytest.mark.skipif(
    STACK != "modern",
    reason="packaging does not depend on the stack: the distributions are checked on modern",
)

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "flask_migrate" / "templates"
STOCK_TEMPLATES = ("flask", "flask-multidb", "aioflask", "aioflask-multidb")
TEMPLATE_FILES = ("README", "alembic.ini.mako", "env.py", "script.py.mako")

# Everything that is not source: other checkouts' build output, caches, virtualenvs.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", ".pytest_cache",
)


def template_files() -> set[str]:
    """``flask_migrate/templates/NAME/FILE`` for every file of every template folder."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in TEMPLATES.glob("*/*")
        if path.is_file() and path.suffix != ".pyc"
    }


def _can_build_wheels() -> bool:
    """setuptools builds wheels itself from 70.1 on; before that it needs the wheel package."""
    if importlib.util.find_spec("wheel") is not None:
        return True
    version = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2] if p.isdigit())
    return version >= (70, 1)


def _build(source: Path, outdir: Path, kind: str) -> Path:
    completed = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", f"--{kind}", "--outdir", str(outdir),
         str(source)],
        capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    pattern = "*.whl" if kind == "wheel" else "*.tar.gz"
    (built,) = outdir.glob(pattern)
    return built


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the source tree, so the build writes nothing into the checkout."""
    copy = tmp_path_factory.mktemp("packaging") / "source"
    shutil.copytree(ROOT, copy, ignore=_NOT_SOURCE)
    return copy


@pytest.fixture(scope="module")
def sdist_names(source: Path) -> set[str]:
    archive = _build(source, source.parent / "sdist", "sdist")
    with tarfile.open(archive) as tar:
        # Drop the top folder, "Flask-Migrate-<version>/".
        return {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}


@pytest.fixture(scope="module")
def wheel_names(source: Path) -> set[str]:
    if not _can_build_wheels():
        pytest.skip(
            "cannot build a wheel offline: this venv has neither the 'wheel' package nor "
            "setuptools >= 70.1 (add wheel to requirements/test.txt)"
        )
    archive = _build(source, source.parent / "wheel", "wheel")
    with zipfile.ZipFile(archive) as wheel:
        return set(wheel.namelist())


def test_source_has_the_four_templates():
    expected = {
        f"flask_migrate/templates/{template}/{name}"
        for template in STOCK_TEMPLATES
        for name in TEMPLATE_FILES
    }
    assert expected <= template_files()


def test_sdist_ships_every_template_file(sdist_names):
    missing = template_files() - sdist_names
    assert not missing, f"not in the sdist: {sorted(missing)}"


def test_sdist_ships_the_project_files(sdist_names):
    for name in ("setup.py", "setup.cfg", "README.rst", "flask_migrate/__init__.py",
                 "flask_migrate/runtime/__init__.py"):
        assert name in sdist_names


def test_wheel_ships_every_template_file(wheel_names):
    missing = template_files() - wheel_names
    assert not missing, f"not in the wheel: {sorted(missing)}"


def test_wheel_ships_the_package(wheel_names):
    modules = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "flask_migrate").rglob("*.py")
        if "templates" not in path.parts and "__pycache__" not in path.parts
    }
    assert modules, "no modules found in the source tree"
    assert modules <= wheel_names, sorted(modules - wheel_names)


@pytest.mark.parametrize("archive", ["sdist_names", "wheel_names"])
def test_no_compiled_files(archive, request):
    names = request.getfixturevalue(archive)
    assert not [name for name in names if name.endswith((".pyc", ".pyo")) or
                "__pycache__" in name]
