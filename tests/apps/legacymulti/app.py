"""The models of tests/legacy_repos/multidb: a default database and the binds "users" and
"logs"; MODEL_VERSION=2 adds a column in each.  AUDIT_URL, when set, adds the bind "audit",
which the repository's revisions predate."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

VERSION = int(os.environ.get("MODEL_VERSION", "1"))
AUDIT_URL = os.environ.get("AUDIT_URL")

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_BINDS"] = {
    "users": os.environ["USERS_URL"],
    "logs": os.environ["LOGS_URL"],
}
if AUDIT_URL:
    app.config["SQLALCHEMY_BINDS"]["audit"] = AUDIT_URL
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db)


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


if AUDIT_URL:

    class AuditEntry(db.Model):
        __bind_key__ = "audit"
        id = db.Column(db.Integer, primary_key=True)
        action = db.Column(db.String(64))
