"""Cut Twilio's OpenAPI description of its 2010 API down to what the tests read.

The tests (tests/fakes/twilio_server.py) check the SMS adapter's requests to the fake Twilio, and
the fake's answers, against Twilio's own description of Create Message. The full file is ~1.9 MB;
this keeps the Messages list path (`/2010-04-01/Accounts/{AccountSid}/Messages.json`), every
component schema it reaches through `$ref` (followed transitively), the security schemes, and the
document's header; the rest is dropped unchanged, nothing is edited.

Source: twilio_api_v2010.json from Twilio's public `twilio-oai` repository (MIT, LICENSE beside
this script). To refresh, fetch the new file and run:

    python tests/fakes/reference/twilio/trim_twilio.py path/to/twilio_api_v2010.json

It writes twilio_api_v2010_messages.json beside this script, with the source's SHA-256 under
`info.x-trimmed-from`.
"""

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "twilio_api_v2010_messages.json"
KEPT_PATHS = ["/2010-04-01/Accounts/{AccountSid}/Messages.json"]
SCHEMA_PREFIX = "#/components/schemas/"


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def trim(document: dict) -> dict:
    paths = {path: document["paths"][path] for path in KEPT_PATHS}
    schemas = document["components"]["schemas"]
    kept, pending = {}, list(_refs(paths))
    while pending:
        ref = pending.pop()
        if not ref.startswith(SCHEMA_PREFIX):
            raise ValueError(f"unexpected $ref {ref!r}: extend trim_twilio.py")
        name = ref[len(SCHEMA_PREFIX):]
        if name not in kept:
            kept[name] = schemas[name]
            pending.extend(_refs(schemas[name]))
    header = {key: value for key, value in document.items() if key not in ("paths", "components")}
    components = {"securitySchemes": document["components"]["securitySchemes"], "schemas": dict(sorted(kept.items()))}
    return {**header, "paths": paths, "components": components}


def main(source: str) -> None:
    raw = Path(source).read_bytes()
    trimmed = trim(json.loads(raw))
    trimmed["info"] = {**trimmed["info"], "x-trimmed-from": {
        "file": "twilio_api_v2010.json", "sha256": hashlib.sha256(raw).hexdigest(), "by": "trim_twilio.py",
    }}
    OUTPUT.write_text(json.dumps(trimmed, indent=1, ensure_ascii=False) + "\n")
    print(f"{OUTPUT.name}: {len(trimmed['paths'])} path(s), {len(trimmed['components']['schemas'])} schema(s)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
