from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("eventflow", "0010_failed_event_edits")]

    operations = [
        migrations.AddField(
            model_name="replay",
            name="selection",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text="Failed events only: which rows besides the types (a page's filter).",
            ),
        ),
    ]
