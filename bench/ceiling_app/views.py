import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from bench.ceiling_app.models import Row


@csrf_exempt
def one_insert(request):
    """Parse the JSON body, INSERT one row, answer a small JSON document."""
    message = json.loads(request.body)
    row = Row.objects.create(
        three_ds_server_trans_id=message["threeDSServerTransID"],
        ds_trans_id=message["dsTransID"],
        merchant_name=message.get("merchantName", "")[:40],
        purchase_amount=int(message.get("purchaseAmount") or 0),
        body=message,
    )
    return JsonResponse({"messageType": "ARes", "acsTransID": str(row.id), "transStatus": "Y"})
