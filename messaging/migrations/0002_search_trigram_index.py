"""The trigram GIN index that makes `LIKE '%part%'` an index search (PostgreSQL only).

SQLite, the embedded development default, has neither; there search scans, which is fine for
the handful of messages of a local run. pg_trgm is a trusted extension: the database owner
can create it without superuser rights.
"""

from django.db import migrations


def create_trigram_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS search_text_trgm ON messaging_searchentry USING gin (text gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS search_text_trgm")


class Migration(migrations.Migration):
    dependencies = [("messaging", "0001_initial")]

    operations = [migrations.RunPython(create_trigram_index, drop_trigram_index)]
