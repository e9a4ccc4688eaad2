"""The Flask-Script front-end of the guarded app: ``python manage.py db ...``."""
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
