"""Customers and their orders, whose schema comes from revision files the tests write.
EXTRA_MODEL=1 adds a model (Invoice) that no revision creates."""
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Customer(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(64), nullable=False, index=True)


class Order(db.Model):
    __tablename__ = "orders"
    id = db.Column(db.Integer, primary_key=True)
    customer_id = db.Column(db.Integer, db.ForeignKey("customer.id"))
    total = db.Column(db.Integer)


if os.environ.get("EXTRA_MODEL"):

    class Invoice(db.Model):
        id = db.Column(db.Integer, primary_key=True)
        number = db.Column(db.String(20))
