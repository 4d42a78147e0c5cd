from django.db import migrations, models
from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def count_claims(apps, schema_editor):
    """Deliveries still pending when this runs may have tries already: count them, so that the
    first-try claim (claims = 0) never runs for them. Done ones are never claimed again."""
    SmsDelivery = apps.get_model("sms", "SmsDelivery")
    SmsAttempt = apps.get_model("sms", "SmsAttempt")
    tries = SmsAttempt.objects.filter(delivery=OuterRef("pk")).order_by().values("delivery").annotate(n=Count("pk")).values("n")
    SmsDelivery.objects.filter(status="pending").update(claims=Coalesce(Subquery(tries), Value(0)))


class Migration(migrations.Migration):

    dependencies = [
        ('sms', '0002_fewer_indexes'),
    ]

    operations = [
        migrations.AddField(
            model_name='smsdelivery',
            name='claims',
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(count_claims, migrations.RunPython.noop),
    ]
