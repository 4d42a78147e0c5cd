import hashlib

from django.db import migrations, models


def fill_target(apps, schema_editor):
    # Records written before this migration keep answering retries on their own path.
    IdempotencyRecord = apps.get_model("core", "IdempotencyRecord")
    for record in IdempotencyRecord.objects.only("pk", "method", "path").iterator():
        target = hashlib.sha256(record.method.encode() + b"\0" + record.path.encode("utf-8", "surrogatepass")).hexdigest()
        IdempotencyRecord.objects.filter(pk=record.pk).update(target=target)


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='idempotencyrecord',
            name='target',
            field=models.CharField(default='', help_text='SHA-256 of method and full path.', max_length=64),
        ),
        migrations.RunPython(fill_target, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name='idempotencyrecord',
            name='idempotency_scope_key_uniq',
        ),
        migrations.AddConstraint(
            model_name='idempotencyrecord',
            constraint=models.UniqueConstraint(fields=('scope', 'key', 'target'), name='idempotency_scope_key_target_uniq'),
        ),
    ]
