import uuid

from django.db import models


class Row(models.Model):
    """One row per request: about what the product's transaction row holds, in one INSERT."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    three_ds_server_trans_id = models.UUIDField()
    ds_trans_id = models.UUIDField()
    merchant_name = models.CharField(max_length=40, blank=True)
    purchase_amount = models.BigIntegerField(null=True)
    body = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        app_label = "ceiling_app"
        db_table = "bench_ceiling_row"
