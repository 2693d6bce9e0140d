"""Upload moves here from `messaging` (its migration 0003 created the table): state only, no SQL."""

import uuid

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("messaging", "0003_upload"),
        ("rooms", "0002_room_edit_history_visibility"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Upload",
                    fields=[
                        ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                        ("name", models.CharField(max_length=255)),
                        ("declared_type", models.CharField(blank=True, default="", max_length=255)),
                        ("length", models.BigIntegerField()),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("expires_at", models.DateTimeField()),
                        ("completed_at", models.DateTimeField(blank=True, null=True)),
                        ("storage_name", models.CharField(blank=True, default="", max_length=255)),
                        ("content_type", models.CharField(blank=True, default="", max_length=100)),
                        ("width", models.IntegerField(blank=True, null=True)),
                        ("height", models.IntegerField(blank=True, null=True)),
                        ("thumbnail_name", models.CharField(blank=True, default="", max_length=255)),
                        (
                            "owner",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="uploads",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "room",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="rooms.room"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "messaging_upload",
                        "indexes": [
                            models.Index(fields=["owner", "completed_at"], name="upload_owner"),
                            models.Index(fields=["completed_at", "expires_at"], name="upload_expiry"),
                        ],
                    },
                )
            ],
            database_operations=[],
        )
    ]
