"""`manage.py acs_signing_key`: the ACS's signing credentials per card network (SPEC §3.3.3, §5.7).

    acs_signing_key install --network visa --key key.pem --chain chain.pem   (chain: leaf first)
    acs_signing_key list                                                      (never key material)
    acs_signing_key generate-test --network visa [--out-root root.pem]        (development, demo)

The key signs acsSignedContent in the app channel's ARes; it is stored sealed (apps.core.crypto).
An app challenge on a network without an active key ends U / 22."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.threeds.models import AcsSigningKey
from apps.threeds.signing_keys import (
    NETWORKS,
    SigningKeyInvalid,
    describe,
    signing_key_install,
    test_credentials_make,
)


class Command(BaseCommand):
    help = "Install, list or generate (for tests) the ACS signing key and chain of a card network."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        install = sub.add_parser("install", help="Install a network's key (PEM) and chain (PEM, leaf first).")
        install.add_argument("--network", required=True, choices=NETWORKS)
        install.add_argument("--key", required=True, type=Path)
        install.add_argument("--chain", required=True, type=Path)
        sub.add_parser("list", help="Every key: network, state, subject, issuer, expiry, SHA-256 fingerprint.")
        generate = sub.add_parser("generate-test", help="A self-made test root and leaf, installed (never for production).")
        generate.add_argument("--network", required=True, choices=NETWORKS)
        generate.add_argument("--out-root", type=Path, default=None, help="Write the test root certificate (the SDK's trust anchor) here.")

    def handle(self, *args, **options):
        getattr(self, "_" + options["action"].replace("-", "_"))(options)

    def _install(self, options):
        try:
            key_pem, chain_pem = options["key"].read_bytes(), options["chain"].read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {exc.filename}: {exc.strerror}")
        self._store(options["network"], key_pem, chain_pem)

    def _generate_test(self, options):
        key_pem, chain_pem, root_pem = test_credentials_make(options["network"])
        self._store(options["network"], key_pem, chain_pem)
        if options["out_root"]:
            options["out_root"].write_bytes(root_pem)
            self.stdout.write(f"test root written to {options['out_root']}")

    def _store(self, network, key_pem, chain_pem):
        try:
            row = signing_key_install(network=network, key_pem=key_pem, chain_pem=chain_pem)
        except SigningKeyInvalid as exc:
            raise CommandError(str(exc))
        info = describe(row)
        self.stdout.write(f"installed for {network}: {info['subject']} (issuer {info['issuer']}, "
                          f"expires {info['not_after']}, SHA-256 {info['sha256']})")

    def _list(self, options):
        rows = AcsSigningKey.objects.all()
        if not rows:
            self.stdout.write("no signing keys installed")
        for row in rows:
            info = describe(row)
            self.stdout.write("\t".join([
                info["network"], "active" if info["active"] else "retired", info["created_at"], info["subject"],
                f"issuer={info['issuer']}", f"expires={info['not_after']}", f"sha256={info['sha256']}",
            ]))
