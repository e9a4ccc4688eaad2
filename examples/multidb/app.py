"""One application, three SQLite databases: the default one and two binds.

Tables go to the default database (app.db) unless their model names a bind with
__bind_key__: "users" (users.db) or "logs" (logs.db).  All files sit next to this one.
"""
import os

import click
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

HERE = os.path.dirname(os.path.abspath(__file__))


def sqlite_file(name):
    return "sqlite:///" + os.path.join(HERE, name)


app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = sqlite_file("app.db")
app.config["SQLALCHEMY_BINDS"] = {
    "users": sqlite_file("users.db"),
    "logs": sqlite_file("logs.db"),
}
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False

db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Setting(db.Model):
    key = db.Column(db.String(64), primary_key=True)
    value = db.Column(db.String(200))


class User(db.Model):
    __bind_key__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), nullable=False, unique=True)


class Event(db.Model):
    __bind_key__ = "logs"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer)  # a user in another database: no foreign key
    message = db.Column(db.String(200), nullable=False)


@app.cli.command("signup")
@click.argument("email")
def signup(email):
    """Add a user (users database) and log the event (logs database)."""
    user = User(email=email)
    db.session.add(user)
    db.session.commit()
    db.session.add(Event(user_id=user.id, message=f"signed up: {email}"))
    db.session.commit()
    print(f"{User.query.count()} user(s), {Event.query.count()} event(s)")
