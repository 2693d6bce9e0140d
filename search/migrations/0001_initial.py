"""SearchEntry and SearchCursor move here from `messaging` (its migrations 0001 and 0002 created the
tables and the trigram index): state only, no SQL."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("messaging", "0002_search_trigram_index"),
        ("rooms", "0002_room_edit_history_visibility"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SearchCursor",
                    fields=[
                        (
                            "room",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="+",
                                serialize=False,
                                to="rooms.room",
                            ),
                        ),
                        ("version", models.BigIntegerField(default=0)),
                    ],
                    options={"db_table": "messaging_searchcursor"},
                ),
                migrations.CreateModel(
                    name="SearchEntry",
                    fields=[
                        ("message_id", models.CharField(max_length=24, primary_key=True, serialize=False)),
                        ("seq", models.BigIntegerField()),
                        ("author_id", models.BigIntegerField()),
                        ("posted_at", models.DateTimeField()),
                        ("text", models.TextField()),
                        ("has_file", models.BooleanField(default=False)),
                        ("has_link", models.BooleanField(default=False)),
                        ("in_thread", models.BooleanField(default=False)),
                        ("mentions", models.JSONField(default=list)),
                        ("mentions_room", models.BooleanField(default=False)),
                        ("version", models.BigIntegerField()),
                        (
                            "room",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="+",
                                to="rooms.room",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "messaging_searchentry",
                        "indexes": [
                            models.Index(fields=["room", "-posted_at", "-message_id"], name="search_room_time"),
                            models.Index(fields=["-posted_at", "-message_id"], name="search_time"),
                            models.Index(fields=["author_id", "-posted_at", "-message_id"], name="search_author_time"),
                        ],
                    },
                ),
            ],
            database_operations=[],
        )
    ]
