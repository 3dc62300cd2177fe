"""Topics and consumers get a Redis identity that renames leave alone (issue 9, case 7).

Existing rows get their current name: the keys and groups they already have
in Redis keep working, nothing in Redis is touched.
"""

import django.core.validators
from django.db import migrations, models


def name_is_identity(apps, schema_editor):
    for model_name, field_name in (("Topic", "stream_name"), ("Consumer", "group_name")):
        model = apps.get_model("eventflow", model_name)
        model.objects.update(**{field_name: models.F("name")})


class Migration(migrations.Migration):
    dependencies = [
        ("eventflow", "0004_consumer_webhooks"),
    ]

    operations = [
        migrations.AddField(
            model_name="topic",
            name="stream_name",
            field=models.CharField(default="", editable=False, max_length=110),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="consumer",
            name="group_name",
            field=models.CharField(default="", editable=False, max_length=110),
            preserve_default=False,
        ),
        migrations.RunPython(name_is_identity, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="topic",
            name="stream_name",
            field=models.CharField(
                "Redis identity",
                editable=False,
                help_text="The name it was created with; its stream and keys keep it when it is renamed.",
                max_length=110,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="consumer",
            name="group_name",
            field=models.CharField(
                "Redis identity",
                editable=False,
                help_text="The name it was created with; its consumer groups keep it when it is renamed.",
                max_length=110,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="topic",
            name="name",
            field=models.CharField(
                help_text="Used in URLs: lowercase letters, digits, . _ -. Renaming keeps its events and subscribers.",
                max_length=100,
                unique=True,
                validators=[
                    django.core.validators.RegexValidator(
                        "^[a-z0-9][a-z0-9._-]{0,99}\\Z",
                        "Use 1–100 lowercase letters, digits, dots, dashes or underscores, starting with a letter or digit.",
                    )
                ],
            ),
        ),
    ]
