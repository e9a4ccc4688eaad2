"""Command-line entry point in the Flask-Script style: python manage.py --help"""
# Flask-Script 2.0.6 (Flask 1.x) or Flask-Script-NG, its fork for Flask >= 2.2.4.  An
# application on Flask >= 2 simply writes: from flask_script_ng import Manager
try:
    from flask_script import Manager
except ImportError:
    from flask_script_ng import Manager

from flask_migrate import MigrateCommand

from app import Author, Note, app, db

manager = Manager(app)
manager.add_command("db", MigrateCommand)


# @manager.option rather than @manager.command: on Python 3.11, Flask-Script 2.0.6's
# @manager.command calls inspect.getargspec(), which no longer exists.
@manager.option("-a", "--author", dest="author", default="Ada", help="who writes the note")
@manager.option("-t", "--text", dest="text", default="Hello from manage.py", help="the note")
def note(author, text):
    """Add a note (and its author if new), then list all notes."""
    writer = Author.query.filter_by(name=author).first()
    if writer is None:
        writer = Author(name=author)
        db.session.add(writer)
        db.session.flush()
    db.session.add(Note(author_id=writer.id, text=text))
    db.session.commit()
    for name, body in db.session.query(Author.name, Note.text).join(Note).order_by(Note.id):
        print(f"{name}: {body}")


if __name__ == "__main__":
    manager.run()
