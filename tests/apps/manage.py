"""A classic Flask-Script manage.py, as written for Flask-Migrate 2.x.

Every test application but ``factory`` (which has a manage.py of its own) gets a copy of this
file beside its app.py when a test copies it (:func:`tests.conftest.copy_app`).
"""
try:
    from flask_script import Manager  # legacy stack: Flask-Script 2.0.6
except ImportError:
    from flask_script_ng import Manager  # modern stack: its maintained fork

from flask_migrate import MigrateCommand

from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
