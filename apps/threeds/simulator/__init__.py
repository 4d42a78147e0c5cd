"""Plays everyone around the ACS: the DS, the 3DS Server / merchant, the 3DS SDK, the cardholder.

One package for `manage.py simulate_3ds` and for the tests' end-to-end harness, so the command
exercises the server exactly as the tests do:

- `messages`: AReq / CReq / RRes builders in the EMV field names, base64url, masking;
- `transport`: how the messages reach the server: `HttpTransport` (requests, a running server)
  or `DjangoClientTransport` (Django's test client, in process), behind one small interface;
- `client`: the ACS seen from outside: `Acs.send_areq` → `Authentication`, then `AppChallenge`
  (JSON CReqs with counters) or `BrowserChallenge` (the form posts of the challenge page);
- `endpoints`: a local HTTP server with the DS's dsURL (answers RRes 01), the merchant's
  notificationURL and the issuer backend's notification endpoint, recording what arrives;
- `phone`: the cardholder reading the code: the `file` SMS backend's lines, or any provider
  fake that lists accepted messages;
- `page`: the challenge page's forms and text.

Every unexpected answer raises `Unexpected` (an AssertionError, so a test using the package fails
with the simulator's message; the command turns it into exit status 1). Nothing here imports
pytest or touches the database.
"""

from apps.threeds.simulator.errors import Unexpected, Unreachable

__all__ = ["Unexpected", "Unreachable"]
