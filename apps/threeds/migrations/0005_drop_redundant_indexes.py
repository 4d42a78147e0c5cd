"""Indexes every AReq wrote and no query used: the single-column indexes of the issuer and the card
(composite indexes start with each), of the PAN fingerprint (nothing finds a transaction by it:
the verification API goes by dsTransID) and of transStatus (filtered per issuer, by
threeds_tx_status_keyset_idx), with the pattern twins of the last two.

Only the indexes are dropped (AlterField would also drop and re-validate both foreign keys, a
full-table lock on a large table)."""

import django.db.models.deletion
from django.db import migrations, models

DROP = """
DROP INDEX IF EXISTS "threeds_transaction_card_id_a59dd584";
DROP INDEX IF EXISTS "threeds_transaction_issuer_id_cf6e2b01";
DROP INDEX IF EXISTS "threeds_transaction_pan_fingerprint_20a5a009";
DROP INDEX IF EXISTS "threeds_transaction_pan_fingerprint_20a5a009_like";
DROP INDEX IF EXISTS "threeds_transaction_trans_status_772af060";
DROP INDEX IF EXISTS "threeds_transaction_trans_status_772af060_like";
"""
CREATE = """
CREATE INDEX "threeds_transaction_card_id_a59dd584" ON "threeds_transaction" ("card_id");
CREATE INDEX "threeds_transaction_issuer_id_cf6e2b01" ON "threeds_transaction" ("issuer_id");
CREATE INDEX "threeds_transaction_pan_fingerprint_20a5a009" ON "threeds_transaction" ("pan_fingerprint");
CREATE INDEX "threeds_transaction_trans_status_772af060" ON "threeds_transaction" ("trans_status");
"""


class Migration(migrations.Migration):

    dependencies = [
        ("cards", "0001_initial"),
        ("issuers", "0002_drop_otp_delivery"),
        ("threeds", "0004_analyst_indexes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP, CREATE)],
            state_operations=[
                migrations.AlterField(
                    model_name="transaction",
                    name="card",
                    field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="transactions", to="cards.card"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="issuer",
                    field=models.ForeignKey(db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="transactions", to="issuers.issuer"),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="pan_fingerprint",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="transaction",
                    name="trans_status",
                    field=models.CharField(blank=True, max_length=1),
                ),
            ],
        ),
    ]
