"""`manage.py bootstrap_issuer`: a new issuer ready to serve, its first API key and webhook secret.

Prints exactly one JSON line on stdout so a deployment script can read the secrets, which are
shown nowhere else: {"issuer_id": ..., "api_key": ..., "webhook_secret": ...}
"""

import json
from urllib.parse import urlsplit

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import IntegrityError, transaction

from apps.core.exceptions import ApplicationError
from apps.issuers.models import OTP_DELIVERY_ISSUER, OTP_DELIVERY_PROVIDER
from apps.issuers.services import api_key_create, bin_grant_create, issuer_create, parse_bin_range

# Model field → the option that sets it, so errors name what the operator typed.
_OPTION_FOR_FIELD = {"webauthn_rp_id": "--rp-id", "webauthn_origins": "--origin"}


def _origin_problem(origin: str) -> str | None:
    parts = urlsplit(origin)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an http(s) origin, e.g. https://app.example.com"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "an origin has no path, query or fragment"
    return None


class Command(BaseCommand):
    help = "Create an issuer with an API key; print one JSON line with the key and the webhook secret."

    def add_arguments(self, parser):
        parser.add_argument("--issuer-id", required=True, help="10 letters or digits.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--country", default="JP", help="ISO 3166-1 alpha-2 home country (default JP).")
        parser.add_argument("--notification-base-url", default="", help="Base URL of the issuer's backend for 3DS notifications.")
        parser.add_argument("--deliver-otp-url", default="", help="The issuer's DeliverOTP endpoint.")
        parser.add_argument(
            "--otp-delivery", choices=[OTP_DELIVERY_PROVIDER, OTP_DELIVERY_ISSUER], default=OTP_DELIVERY_PROVIDER,
            help="provider: the service sends the SMS; issuer: the OTP goes to --deliver-otp-url.",
        )
        parser.add_argument("--rp-id", default="", help="WebAuthn relying-party id of the issuer's app.")
        parser.add_argument("--origin", action="append", default=[], help="Allowed WebAuthn origin; repeat for several.")
        parser.add_argument(
            "--bin-range", action="append", default=[], metavar="START-END",
            help="BIN grant: PAN prefixes of equal length, 6 to 11 digits (e.g. 40000000-40009999); repeat for several. "
            "Refused when it overlaps another grant.",
        )

    def handle(self, *args, **options):
        self._check_options(options)
        try:
            with transaction.atomic():
                issuer, webhook_secret = issuer_create(
                    issuer_id=options["issuer_id"],
                    name=options["name"],
                    country=options["country"],
                    notification_base_url=options["notification_base_url"],
                    deliver_otp_url=options["deliver_otp_url"],
                    otp_delivery=options["otp_delivery"],
                    webauthn_rp_id=options["rp_id"],
                    webauthn_origins=options["origin"],
                )
                _, api_key = api_key_create(issuer=issuer, name="bootstrap", created_by="bootstrap_issuer")
                # All or nothing: an overlapping range leaves no half-made issuer behind.
                for start, end in options["parsed_bin_ranges"]:
                    try:
                        bin_grant_create(issuer=issuer, start=start, end=end, actor="bootstrap_issuer")
                    except ApplicationError:
                        raise CommandError(f"--bin-range {start}-{end}: overlaps an existing BIN grant.")
                # issuer_create made the default OTP policy (SMS to the issuer's own country);
                # the risk policy joins it here with the 3-D Secure core.
        except ValidationError as exc:
            raise CommandError(self._describe(exc))
        except IntegrityError:  # lost a race with a concurrent bootstrap of the same issuer_id
            raise CommandError(f"--issuer-id: an issuer {options['issuer_id']} already exists.")
        self.stdout.write(json.dumps({"issuer_id": issuer.issuer_id, "api_key": api_key, "webhook_secret": webhook_secret}))

    def _check_options(self, options) -> None:
        """The rules that span options; single fields are checked by the model."""
        problems = []
        country = options["country"]
        if not (len(country) == 2 and country.isascii() and country.isalpha()):
            problems.append("--country: two letters, ISO 3166-1 alpha-2 (e.g. JP).")
        if options["otp_delivery"] == OTP_DELIVERY_ISSUER and not options["deliver_otp_url"]:
            problems.append("--deliver-otp-url: required with --otp-delivery issuer.")
        if options["origin"] and not options["rp_id"]:
            problems.append("--rp-id: required with --origin.")
        if options["rp_id"] and not options["origin"]:
            problems.append("--origin: at least one is required with --rp-id.")
        for origin in options["origin"]:
            if problem := _origin_problem(origin):
                problems.append(f"--origin {origin}: {problem}.")
        options["parsed_bin_ranges"] = []
        for text in options["bin_range"]:
            try:
                options["parsed_bin_ranges"].append(parse_bin_range(text))
            except ApplicationError as exc:
                problems.append(f"--bin-range {text}: {' '.join(exc.fields.get('bin_range', [exc.message]))}")
        if problems:
            raise CommandError("\n".join(problems))

    @staticmethod
    def _describe(exc: ValidationError) -> str:
        if not hasattr(exc, "error_dict"):
            return " ".join(exc.messages)
        lines = []
        for field, messages in exc.message_dict.items():
            if field == NON_FIELD_ERRORS:
                lines.extend(messages)
                continue
            option = _OPTION_FOR_FIELD.get(field, "--" + field.replace("_", "-"))
            lines.extend(f"{option}: {message}" for message in messages)
        return "\n".join(lines)
