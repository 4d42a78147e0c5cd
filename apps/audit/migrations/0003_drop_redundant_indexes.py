"""Two indexes every event paid for and no query used: the single-column index of the issuer (the
(issuer, created_at) index starts with it) and the index of the kind with its pattern twin
(events are read per issuer or per transaction, never by kind alone).

Only the indexes are dropped (AlterField would also drop and re-validate the foreign key, a
full-table lock on a large trail)."""

import django.db.models.deletion
from django.db import migrations, models

DROP = """
DROP INDEX IF EXISTS "audit_auditevent_issuer_id_60a4e446";
DROP INDEX IF EXISTS "audit_auditevent_kind_931b47e8";
DROP INDEX IF EXISTS "audit_auditevent_kind_931b47e8_like";
"""
CREATE = """
CREATE INDEX "audit_auditevent_issuer_id_60a4e446" ON "audit_auditevent" ("issuer_id");
CREATE INDEX "audit_auditevent_kind_931b47e8" ON "audit_auditevent" ("kind");
"""


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0002_append_only_trigger"),
        ("issuers", "0002_drop_otp_delivery"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP, CREATE)],
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="issuer",
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="audit_events", to="issuers.issuer"),
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="kind",
                    field=models.CharField(max_length=64),
                ),
            ],
        ),
    ]
