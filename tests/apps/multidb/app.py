"""A default database and two binds, "users" and "logs".  NO_DEFAULT=1 leaves out the default
database (binds only).  MODEL_VERSION=2 adds a column in every database.  MIGRATE_OPTIONS (JSON)
adds keyword arguments to ``Migrate(...)``."""
import json
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

VERSION = int(os.environ.get("MODEL_VERSION", "1"))
NO_DEFAULT = bool(os.environ.get("NO_DEFAULT"))

app = Flask(__name__)
if not NO_DEFAULT:
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_BINDS"] = {
    "users": os.environ["USERS_URL"],
    "logs": os.environ["LOGS_URL"],
}
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db, **json.loads(os.environ.get("MIGRATE_OPTIONS") or "{}"))

if not NO_DEFAULT:

    class Setting(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        key = db.Column(db.String(64))
        if VERSION >= 2:
            value = db.Column(db.String(64))


class Account(db.Model):
    __bind_key__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    login = db.Column(db.String(64))
    if VERSION >= 2:
        email = db.Column(db.String(120))


class Event(db.Model):
    __bind_key__ = "logs"
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(200))
    if VERSION >= 2:
        level = db.Column(db.Integer)
