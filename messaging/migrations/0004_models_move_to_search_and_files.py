"""SearchEntry and SearchCursor now belong to `search`, Upload to `files`: state only, the tables
stay as they are (each model names its table). Content types follow, so permissions stay attached."""

from django.db import migrations

MOVED = {"searchentry": "search", "searchcursor": "search", "upload": "files"}


def relabel_content_types(apps, schema_editor):  # type: ignore[no-untyped-def]
    content_type = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        content_type.objects.filter(app_label="messaging", model=model).update(app_label=app_label)


def restore_content_types(apps, schema_editor):  # type: ignore[no-untyped-def]
    content_type = apps.get_model("contenttypes", "ContentType")
    for model, app_label in MOVED.items():
        content_type.objects.filter(app_label=app_label, model=model).update(app_label="messaging")


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0003_upload"),
        ("search", "0001_initial"),
        ("files", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="SearchEntry"),
                migrations.DeleteModel(name="SearchCursor"),
                migrations.DeleteModel(name="Upload"),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types, restore_content_types),
    ]
