"""A default database and a "users" bind; AUDIT_URL, when set, adds an "audit" bind.

Setting AUDIT_URL after revisions were written is a bind added to an application whose
existing revisions know nothing about it."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

AUDIT_URL = os.environ.get("AUDIT_URL")

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_BINDS"] = {"users": os.environ["USERS_URL"]}
if AUDIT_URL:
    app.config["SQLALCHEMY_BINDS"]["audit"] = AUDIT_URL
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Setting(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    key = db.Column(db.String(64))


class Account(db.Model):
    __bind_key__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    login = db.Column(db.String(64))


if AUDIT_URL:

    class AuditEntry(db.Model):
        __bind_key__ = "audit"
        id = db.Column(db.Integer, primary_key=True)
        action = db.Column(db.String(64))
