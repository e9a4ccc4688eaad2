"""One database whose schema comes only from revision files the tests write.

MIGRATE_OPTIONS (JSON) adds keyword arguments to ``Migrate(...)``, for example
``{"transaction_per_migration": true}``.  The ``note`` model's table is created by a revision,
so that a script can use the application's own session after migrating.
"""
import json
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db, **json.loads(os.environ.get("MIGRATE_OPTIONS") or "{}"))


class Note(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(100))
