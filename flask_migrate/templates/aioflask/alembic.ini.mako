# Alembic settings for this migrations folder (written by Flask-Migrate).
#
# The database URLs come from the Flask application's configuration, not from this file.
# Logging of the `flask db` / `manage.py db` commands is set up by Flask-Migrate; the
# application's own logging configuration is left alone.

[alembic]
# Name revision files with the date first, so they sort by creation:
# file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s

# Store create dates in this time zone (needs the tzdata package on some systems):
# timezone = UTC

# Cut the message part of revision file names to this many characters:
# truncate_slug_length = 40
