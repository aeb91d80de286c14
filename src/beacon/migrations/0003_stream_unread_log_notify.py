"""An unread counter on the stream row, and (PostgreSQL) a NOTIFY for each new seq.

The counter starts from the rows that are unread now. The trigger (payload
``"<stream> <epoch> <seq>"``) lets each server's
log watcher learn of every committed event at no query cost (``fanout/logwatch.py``):
PostgreSQL delivers a transaction's notifications when it commits, and never for one
that rolls back.
"""

from django.db import migrations, models

NOTIFY_SQL = """
CREATE OR REPLACE FUNCTION beacon_stream_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('beacon_log', NEW.name || ' ' || NEW.epoch || ' ' || NEW.last_seq);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER beacon_stream_notify AFTER UPDATE OF last_seq ON beacon_stream
    FOR EACH ROW WHEN (NEW.last_seq > OLD.last_seq) EXECUTE FUNCTION beacon_stream_notify();
"""

UNNOTIFY_SQL = """
DROP TRIGGER IF EXISTS beacon_stream_notify ON beacon_stream;
DROP FUNCTION IF EXISTS beacon_stream_notify();
"""

COUNT_SQL = """
UPDATE beacon_stream SET unread = (
    SELECT COUNT(*) FROM beacon_notification n JOIN beacon_event e ON e.id = n.event_id
    WHERE e.stream_id = beacon_stream.id AND n.read_at IS NULL
)
"""


def add_notify(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(NOTIFY_SQL)


def drop_notify(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNNOTIFY_SQL)


def count_unread(apps, schema_editor):  # type: ignore[no-untyped-def]
    schema_editor.execute(COUNT_SQL)


class Migration(migrations.Migration):
    dependencies = [("beacon", "0002_ticket")]

    operations = [
        migrations.AddField(
            model_name="stream", name="unread", field=models.BigIntegerField(default=0)
        ),
        migrations.RunPython(count_unread, migrations.RunPython.noop),
        migrations.RunPython(add_notify, drop_notify),
    ]
