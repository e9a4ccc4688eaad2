"""A small shop built by an application factory.

create_app(config_name) picks the configuration: "development" (the default, or the
SHOP_CONFIG environment variable) or "testing".  Each one has its own SQLite file next to
manage.py.
"""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

# The folder that holds manage.py: the database files go there.
BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DATABASE_FILES = {
    "development": "dev.db",
    "testing": "test.db",
}

# Created once, bound to each application in create_app().
db = SQLAlchemy()
migrate = Migrate()


def create_app(config_name=None):
    config_name = config_name or os.environ.get("SHOP_CONFIG", "development")
    if config_name not in DATABASE_FILES:
        raise ValueError(
            f"unknown configuration {config_name!r}; use one of {', '.join(DATABASE_FILES)}"
        )
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(
        BASE_DIR, DATABASE_FILES[config_name]
    )
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    app.config["SHOP_CONFIG"] = config_name
    db.init_app(app)
    migrate.init_app(app, db)
    return app


# The models must be imported for `db migrate` to see them.
from . import models  # noqa: E402,F401
