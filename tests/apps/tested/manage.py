"""A classic Flask-Script manage.py, as written for Flask-Migrate 2.x."""
try:
    from flask_script import Manager
except ImportError:
    from flask_script_ng import Manager

from flask_migrate import MigrateCommand

from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
