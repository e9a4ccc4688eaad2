"""One database.  MODEL_VERSION (1, 2, 3) changes the models so autogenerate has work to do:
2 adds User.email, 3 also widens User.name (a type change) and adds the Post table."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

VERSION = int(os.environ.get("MODEL_VERSION", "1"))

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db, directory=os.environ.get("MIGRATE_DIRECTORY", "migrations"))


class User(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(256 if VERSION >= 3 else 128))
    if VERSION >= 2:
        email = db.Column(db.String(120))


if VERSION >= 3:

    class Post(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        title = db.Column(db.String(200))
