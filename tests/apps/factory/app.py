"""An application factory; the config name picks the database URL variable."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

db = SQLAlchemy()
migrate = Migrate()


class Item(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    label = db.Column(db.String(64))
    if os.environ.get("MODEL_VERSION") == "2":
        price = db.Column(db.Integer)


def create_app(config=None):
    app = Flask(__name__)
    variable = "TEST_DATABASE_URL" if config == "testing" else "DATABASE_URL"
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ[variable]
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    db.init_app(app)
    migrate.init_app(app, db)
    return app
