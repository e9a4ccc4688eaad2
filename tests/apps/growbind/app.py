"""A single-database application that grows a bind: WITH_USERS=1 adds the bind "users"
(USERS_URL) and its model Account.  Used to convert a single-database migrations folder to a
multi-database one."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

WITH_USERS = bool(os.environ.get("WITH_USERS"))

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
if WITH_USERS:
    app.config["SQLALCHEMY_BINDS"] = {"users": os.environ["USERS_URL"]}
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Item(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    label = db.Column(db.String(64))


if WITH_USERS:

    class Account(db.Model):
        __bind_key__ = "users"
        id = db.Column(db.Integer, primary_key=True)
        login = db.Column(db.String(64))
