"""Flask-Script with an application factory and a manager option, as in Flask-Migrate 2.x."""
try:
    from flask_script import Manager
except ImportError:
    from flask_script_ng import Manager

from flask_migrate import MigrateCommand

from app import create_app

manager = Manager(create_app)
manager.add_option("-c", "--config", dest="config", required=False)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
