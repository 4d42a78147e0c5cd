"""Indexes of the analyst workspace (apps/analyst): keyset pagination of the transaction list per
issuer, one index per selective filter that keeps the keyset order, and a trigram index for the
merchant search. Plans and timings on a million transactions: docs/BENCHMARKS-ANALYST.md.

On PostgreSQL every index is built CONCURRENTLY (the migration is not atomic), so a live
threeds_transaction keeps taking AReqs while they build; if a build fails it leaves an INVALID
index behind, which `DROP INDEX CONCURRENTLY` removes before running the migration again. The old
(issuer, -created_at) index is dropped only after its replacement, which starts with the same
columns, exists.

The trigram index has no portable form (GIN, an operator class, an expression), so it lives only
here and only on PostgreSQL, outside the model state; pg_trgm is a trusted extension (PostgreSQL
13+): the database owner may create it. SQLite (the embedded default) gets the btree indexes.
"""

from django.db import migrations, models

MERCHANT_TRGM = "threeds_tx_merchant_trgm_idx"


class AddIndexConcurrentlyOnPostgres(migrations.AddIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)


class RemoveIndexConcurrentlyOnPostgres(migrations.RemoveIndex):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = from_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.remove_index(model, index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            index = to_state.models[app_label, self.model_name_lower].get_index_by_name(self.name)
            schema_editor.add_index(model, index, concurrently=True)


def merchant_trgm_create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        # Kept when the migration is reversed: something else may use it by then.
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        # UPPER(...::text): the expression Django's istartswith / icontains compare with LIKE.
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {MERCHANT_TRGM} ON threeds_transaction "
            "USING gin (UPPER(merchant_name::text) gin_trgm_ops)"
        )


def merchant_trgm_drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {MERCHANT_TRGM}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [
        ("threeds", "0003_transaction_card_merchant_index"),
    ]

    operations = [
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(
                fields=["issuer", "-created_at", "-acs_trans_id", "ares_trans_status", "trans_status"],
                name="threeds_tx_issuer_keyset_idx",
            ),
        ),
        RemoveIndexConcurrentlyOnPostgres(model_name="transaction", name="threeds_tx_issuer_created_idx"),
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(fields=["issuer", "trans_status", "-created_at", "-acs_trans_id"], name="threeds_tx_status_keyset_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(fields=["issuer", "pan_last4", "-created_at", "-acs_trans_id"], name="threeds_tx_last4_keyset_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(
                condition=models.Q(("ares_trans_status", "C")), fields=["issuer", "-created_at", "-acs_trans_id"],
                name="threeds_tx_challenged_idx",
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(fields=["ds_trans_id"], name="threeds_tx_ds_trans_id_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="transaction",
            index=models.Index(fields=["issuer", "purchase_currency", "purchase_amount"], name="threeds_tx_amount_idx"),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="challenge",
            index=models.Index(
                condition=models.Q(("fallback_reason__gt", "")), fields=["fallback_reason"], name="threeds_ch_fallback_idx"
            ),
        ),
        AddIndexConcurrentlyOnPostgres(
            model_name="challenge",
            index=models.Index(fields=["created_at"], name="threeds_ch_created_idx"),
        ),
        migrations.RunPython(merchant_trgm_create, merchant_trgm_drop),
    ]
