"""One message to the ACS through Django's test client, on the simulator's transport, for the
tests that look at a single answer rather than drive a whole authentication
(apps.threeds.simulator.client does that)."""

from apps.threeds.simulator.client import AREQ_PATH
from apps.threeds.simulator.transport import DjangoClientTransport


def post_areq(client, message: dict) -> dict:
    """The ARes (or Erro) to this AReq: HTTP 200 with a JSON body, whatever the message holds."""
    reply = DjangoClientTransport(client).post(AREQ_PATH, json=message)
    assert reply.status_code == 200 and reply.content_type == "application/json", (reply.status_code, reply.text[:500])
    return reply.json()
