"""Flask-Script entry point for the factory: python manage.py [-c CONFIG] COMMAND ...

Manager(create_app) calls create_app(config_name=...) with the value of -c/--config.
"""
# Flask-Script 2.0.6 (Flask 1.x) or Flask-Script-NG, its fork for Flask >= 2.2.4.  An
# application on Flask >= 2 simply writes: from flask_script_ng import Manager
try:
    from flask_script import Manager
except ImportError:
    from flask_script_ng import Manager

from flask import current_app

from flask_migrate import MigrateCommand

from shop import DATABASE_FILES, create_app, db
from shop.models import Product

manager = Manager(create_app)
manager.add_option("-c", "--config", dest="config_name", required=False,
                   choices=sorted(DATABASE_FILES), help="default: development")
manager.add_command("db", MigrateCommand)


# @manager.option rather than @manager.command: on Python 3.11, Flask-Script 2.0.6's
# @manager.command calls inspect.getargspec(), which no longer exists.
@manager.option("-n", "--name", dest="name", default="Teapot", help="product name")
@manager.option("-p", "--price", dest="price", type=int, default=1250, help="price in cents")
def add(name, price):
    """Add a product to the configuration's database and list the products."""
    db.session.add(Product(name=name, price_cents=price))
    db.session.commit()
    print(f"[{current_app.config['SHOP_CONFIG']}]")
    for product in Product.query.order_by(Product.id):
        print(f"{product.name}: {product.price_cents / 100:.2f}")


if __name__ == "__main__":
    manager.run()
