"""Templates (SPEC section 4): ``list-templates``, ``init`` with stock and custom templates, and
the async templates at work, through both command lines.

The async tests use ``tests/apps/asyncdb`` (one database, ``sqlite+aiosqlite``) and
``tests/apps/multidb`` given ``sqlite+aiosqlite`` URLs for all three of its databases.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import flask_migrate
from tests.conftest import Project, Result, sqlite_url, tables, versions
from tests.multidb_helpers import TABLES, URL_VARIABLES, read_revision

TEMPLATES = Path(flask_migrate.__file__).parent / "templates"
STOCK = ("flask", "flask-multidb", "aioflask", "aioflask-multidb")
#: Files every stock template folder holds; init copies all but alembic.ini.mako as they are.
TEMPLATE_FILES = ("README", "alembic.ini.mako", "env.py", "script.py.mako")
#: "Thin" (SPEC section 4): a generated env.py is a few readable lines calling the runtime.
THIN_ENV_PY_LINES = 40


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error:")]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Relative path -> content (None for a folder) of everything under ``folder``."""
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


def synopsis(name: str) -> str:
    with open(TEMPLATES / name / "README", encoding="utf-8") as readme:
        return readme.readline().strip()


def test_stock_templates_are_complete():
    """The package ships exactly the four stock templates, each with its four files."""
    found = sorted(path.name for path in TEMPLATES.iterdir() if path.is_dir()
                   and not path.name.startswith("__"))
    assert found == sorted(STOCK)
    for name in STOCK:
        assert sorted(p.name for p in (TEMPLATES / name).iterdir()) == sorted(TEMPLATE_FILES)
        assert synopsis(name), f"the README of {name} has no first line"


def test_list_templates(make_project, front):
    project = make_project("single")
    result = project.ok("list-templates")
    listed = {}
    for line in result.stdout.splitlines():
        for name in STOCK:
            text = synopsis(name)
            if text in line:
                # The name precedes its synopsis on the line, e.g. "  flask - Single ...".
                listed[line.split(text)[0].strip(" \t-:")] = text
    assert listed == {name: synopsis(name) for name in STOCK}, str(result)
    assert not project.migrations.exists(), str(result)


def test_list_templates_takes_the_directory_option_of_every_command(make_project, front):
    """-d is accepted (before or after the command name) and changes nothing: the API function
    has no directory parameter for it to reach."""
    project = make_project("single")
    plain = project.ok("list-templates")
    after = project.ok("list-templates", "-d", "elsewhere")
    before = project.ok("-d", "elsewhere", "list-templates")
    assert after.stdout == before.stdout == plain.stdout, str(after)
    assert not (project.path / "elsewhere").exists()


def test_init(make_project, front):
    """The files of a new folder, a thin env.py, and an init that refuses to overwrite."""
    project = make_project("single")
    first = project.ok("init")
    folder = project.migrations
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["alembic.ini", "env.py", "script.py.mako", "README", "versions"]
    ), str(first)
    assert (folder / "versions").is_dir(), str(first)
    assert not any((folder / "versions").iterdir()), str(first)
    for name in ("env.py", "script.py.mako", "README"):
        assert (folder / name).read_bytes() == (TEMPLATES / "flask" / name).read_bytes(), (
            f"{name} is not the flask template's\n{first}"
        )
    env_py = (folder / "env.py").read_text(encoding="utf-8")
    assert len(env_py.splitlines()) < THIN_ENV_PY_LINES, f"{env_py}\n{first}"
    assert "from flask_migrate.runtime import run_migrations" in env_py, f"{env_py}\n{first}"
    assert "\nrun_migrations(" in env_py, f"{env_py}\n{first}"
    assert "fileConfig" not in env_py, f"{env_py}\n{first}"
    assert "[alembic]" in (folder / "alembic.ini").read_text(encoding="utf-8"), str(first)

    # A second init must refuse, say why in one line, and leave the folder as it was.
    (folder / "env.py").write_text(env_py + "# edited by the user\n", encoding="utf-8")
    before = snapshot(folder)
    result = project.db("init")
    assert result.returncode == 1, str(result)
    errors = error_lines(result)
    assert len(errors) == 1 and "migrations" in errors[0], str(result)
    assert "Traceback" not in result.output, str(result)
    assert snapshot(folder) == before, str(result)

    # Last, because it fails today: init should end by saying what to do next.
    assert "db migrate" in first.output, f"init does not say what to do next\n{first}"


def test_init_package(make_project, front):
    project = make_project("single")
    result = project.ok("init", "--package")
    assert (project.migrations / "__init__.py").is_file(), str(result)
    assert (project.migrations / "versions" / "__init__.py").is_file(), str(result)
    assert (project.migrations / "env.py").is_file(), str(result)


def test_init_each_stock_template(make_project, front):
    project = make_project("single")
    for name in STOCK:
        folder = project.path / f"mig-{name}"
        result = project.ok("init", "-t", name, "-d", folder.name)
        for file in ("env.py", "script.py.mako", "README"):
            assert (folder / file).read_bytes() == (TEMPLATES / name / file).read_bytes(), (
                f"{folder.name}/{file} is not the {name} template's\n{result}"
            )
        assert (folder / "alembic.ini").is_file() and (folder / "versions").is_dir(), str(result)
        env_py = (folder / "env.py").read_text(encoding="utf-8")
        shown = f"{name}:\n{env_py}\n{result}"
        assert len(env_py.splitlines()) < THIN_ENV_PY_LINES, shown
        assert "run_migrations(" in env_py and "flask_migrate.runtime" in env_py, shown
        assert ("multidb=True" in env_py) == name.endswith("-multidb"), shown
        assert ("asynchronous=True" in env_py) == name.startswith("aio"), shown


def test_init_unknown_template(make_project, front):
    project = make_project("single")
    result = project.db("init", "-t", "no-such-template")
    assert result.returncode == 2, str(result)
    errors = error_lines(result)
    assert len(errors) == 1, str(result)
    assert "no-such-template" in errors[0] and "list-templates" in errors[0], str(result)
    assert "Traceback" not in result.output, str(result)
    assert not project.migrations.exists(), str(result)


CUSTOM_ENV_PY = '''\
"""env.py of a custom template."""
from flask_migrate.runtime import run_migrations

run_migrations()
'''

CUSTOM_SCRIPT = '''\
"""${message}"""
# Written from the custom template.
from alembic import op
import sqlalchemy as sa
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade():
    ${upgrades if upgrades else "pass"}


def downgrade():
    ${downgrades if downgrades else "pass"}
'''

CUSTOM_INI = """\
# alembic.ini of the custom template, for ${script_location}
[alembic]
"""


def write_custom_template(folder: Path) -> Path:
    folder.mkdir()
    (folder / "README").write_text("A custom template for the tests.\n", encoding="utf-8")
    (folder / "env.py").write_text(CUSTOM_ENV_PY, encoding="utf-8")
    (folder / "script.py.mako").write_text(CUSTOM_SCRIPT, encoding="utf-8")
    (folder / "alembic.ini.mako").write_text(CUSTOM_INI, encoding="utf-8")
    return folder


def test_init_custom_template(make_project, front, tmp_path):
    """--template takes the path of a folder of one's own, absolute or relative."""
    project = make_project("single")
    absolute = write_custom_template(tmp_path / "custom")
    result = project.ok("init", "--template", str(absolute))
    assert (project.migrations / "env.py").read_text(encoding="utf-8") == CUSTOM_ENV_PY, (
        str(result)
    )
    script = (project.migrations / "script.py.mako").read_text(encoding="utf-8")
    assert script == CUSTOM_SCRIPT, str(result)
    ini = (project.migrations / "alembic.ini").read_text(encoding="utf-8")
    assert ini.startswith("# alembic.ini of the custom template, for "), f"{ini}\n{result}"
    assert "${" not in ini, f"alembic.ini.mako was not rendered:\n{ini}\n{result}"
    assert (project.migrations / "versions").is_dir(), str(result)

    # The folder works: its env.py and script.py.mako write the revision.
    result = project.ok("migrate", "-m", "custom")
    [path] = project.revision_files()
    text = path.read_text(encoding="utf-8")
    assert "# Written from the custom template." in text, f"{text}\n{result}"
    assert "op.create_table('user'" in text, f"{text}\n{result}"

    # A relative path is relative to the working directory.
    write_custom_template(project.path / "mytemplate")
    result = project.ok("init", "-t", "mytemplate", "-d", "other")
    assert (project.path / "other" / "env.py").read_text(encoding="utf-8") == CUSTOM_ENV_PY, (
        str(result)
    )


# --- async templates -------------------------------------------------------------------------


def sync(url: str) -> str:
    """The plain sqlite URL of the same file, for the test's own checks."""
    return url.replace("sqlite+aiosqlite://", "sqlite://")


def test_aioflask(make_project, front):
    """migrate, --sql, upgrade and downgrade through sqlite+aiosqlite; a sync URL is refused."""
    project = make_project("asyncdb")
    assert project.url.startswith("sqlite+aiosqlite:///"), project.url
    url = sync(project.url)  # the same file, for the test's own checks
    result = project.ok("init", "-t", "aioflask")
    assert (project.migrations / "env.py").read_bytes() == (
        TEMPLATES / "aioflask" / "env.py"
    ).read_bytes(), str(result)

    result = project.ok("migrate", "-m", "notes")
    [path] = project.revision_files()
    rev, _, functions = read_revision(path)
    assert "op.create_table('note'" in functions["upgrade"], str(result)

    # Offline: the SQL on stdout, the database untouched.
    before = tables(url)
    result = project.ok("upgrade", "--sql")
    assert "CREATE TABLE note " in result.stdout, str(result)
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{rev}')" in result.stdout, (
        str(result)
    )
    assert tables(url) == before and versions(url) == set(), str(result)

    result = project.ok("upgrade")
    assert tables(url) == {"note", "alembic_version"}, str(result)
    assert versions(url) == {rev}, str(result)

    result = project.ok("downgrade")
    assert tables(url) == {"alembic_version"}, str(result)
    assert versions(url) == set(), str(result)

    sync_db = project.path / "sync.db"
    result = project.db("upgrade", env={"DATABASE_URL": sqlite_url(sync_db)})
    assert result.returncode == 1, str(result)
    errors = error_lines(result)
    assert len(errors) == 1, str(result)
    assert "async driver" in errors[0] and "aiosqlite" in errors[0], str(result)
    assert "Traceback" not in result.output, str(result)
    assert not sync_db.exists() or tables(sqlite_url(sync_db)) == set(), str(result)


@pytest.fixture
def async_multidb(make_project) -> tuple[Project, dict[str, str]]:
    """tests/apps/multidb with sqlite+aiosqlite URLs for its three databases."""
    project = make_project("multidb")
    files = {name: project.path / f"{name or 'app'}.db" for name in TABLES}
    urls = {name: f"sqlite+aiosqlite:///{path}" for name, path in files.items()}
    project.env.update({URL_VARIABLES[name]: url for name, url in urls.items()})
    return project, urls


def test_aioflask_multidb(async_multidb, front):
    project, urls = async_multidb
    result = project.ok("init", "-t", "aioflask-multidb")
    assert (project.migrations / "env.py").read_bytes() == (
        TEMPLATES / "aioflask-multidb" / "env.py"
    ).read_bytes(), str(result)
    result = project.ok("migrate", "-m", "one")
    [path] = project.revision_files()
    rev, _, functions = read_revision(path)
    for name, table in TABLES.items():
        assert f"op.create_table('{table}'" in functions.get(f"upgrade_{name}", ""), (
            f"upgrade_{name}() of {path.name}\n{result}"
        )

    result = project.ok("upgrade")
    for name, table in TABLES.items():
        assert tables(sync(urls[name])) == {table, "alembic_version"}, f"'{name}'\n{result}"
        assert versions(sync(urls[name])) == {rev}, f"'{name}'\n{result}"

    # One database with a sync URL: refused before any database is changed.
    bad = {"LOGS_URL": sqlite_url(project.path / "logs-sync.db")}
    result = project.db("downgrade", "base", env=bad)
    assert result.returncode == 1, str(result)
    errors = error_lines(result)
    assert len(errors) == 1 and "async driver" in errors[0], str(result)
    for name, table in TABLES.items():
        assert versions(sync(urls[name])) == {rev}, (
            f"database '{name}' was changed by a command that failed\n{result}"
        )
        assert table in tables(sync(urls[name])), f"'{name}'\n{result}"
