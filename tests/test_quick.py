from tests.conftest import tables, versions


def test_init_migrate_upgrade(make_project, front):
    project = make_project("single")
    project.ok("init")
    project.ok("migrate", "-m", "first")
    project.ok("upgrade")
    assert {"user", "alembic_version"} <= tables(project.url)
    assert len(versions(project.url)) == 1
