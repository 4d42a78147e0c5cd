"""`manage.py bin_grants`: the platform operator's BIN grants.

    bin_grants list [--issuer-id ID]
    bin_grants add --issuer-id ID START-END [START-END ...]      (all or nothing)
    bin_grants remove --issuer-id ID START-END                   (refused while cards/products are inside)
    bin_grants attach-cards [--issuer-id ID] [--all]             (cards → their issuer's grant)

`attach-cards` finishes what the migration could not: after granting legacy ranges with `add`,
it attaches each card without a grant (with --all: every card) to its issuer's grant that holds
its PAN. Cards without a grant are not found by an AReq (answer N/08).

In apps.cards, not apps.issuers: removing a grant and attaching cards both look at the cards."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from apps.cards.services import bin_grant_attach_cards, bin_grant_delete
from apps.core.exceptions import ApplicationError
from apps.issuers.models import BinGrant, Issuer
from apps.issuers.selectors import bin_grant_list
from apps.issuers.services import bin_grant_create, parse_bin_range

ACTOR = "bin_grants command"


class Command(BaseCommand):
    help = "List, add or remove BIN grants (platform operator), and attach cards to their grants."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Every grant, with the number of cards inside.")
        listing.add_argument("--issuer-id", default=None)
        add = sub.add_parser("add", help="Grant ranges to an issuer (all or nothing).")
        add.add_argument("--issuer-id", required=True)
        add.add_argument("ranges", nargs="+", metavar="START-END")
        remove = sub.add_parser("remove", help="Remove one grant of an issuer.")
        remove.add_argument("--issuer-id", required=True)
        remove.add_argument("range", metavar="START-END")
        attach = sub.add_parser("attach-cards", help="Attach cards to their issuer's grant holding the PAN.")
        attach.add_argument("--issuer-id", default=None)
        attach.add_argument("--all", action="store_true", help="Recompute every card's grant, not only cards without one.")

    def handle(self, *args, **options):
        action = options["action"].replace("-", "_")
        getattr(self, f"_{action}")(options)

    @staticmethod
    def _issuer(issuer_id: str | None) -> Issuer | None:
        if issuer_id is None:
            return None
        issuer = Issuer.objects.filter(issuer_id=issuer_id).first()
        if issuer is None:
            raise CommandError(f"--issuer-id: no issuer {issuer_id}.")
        return issuer

    @staticmethod
    def _parse(text: str) -> tuple[str, str]:
        try:
            return parse_bin_range(text)
        except ApplicationError as exc:
            raise CommandError(f"{text}: {' '.join(exc.fields.get('bin_range', [exc.message]))}")

    def _list(self, options):
        for grant in bin_grant_list(issuer=self._issuer(options["issuer_id"])):
            self.stdout.write(f"{grant.issuer.issuer_id}\t{grant.start}-{grant.end}\tcards={grant.cards.count()}")

    def _add(self, options):
        issuer = self._issuer(options["issuer_id"])
        ranges = [self._parse(text) for text in options["ranges"]]
        with transaction.atomic():
            for start, end in ranges:
                try:
                    bin_grant_create(issuer=issuer, start=start, end=end, actor=ACTOR)
                except ApplicationError as exc:
                    raise CommandError(f"{start}-{end}: {exc.message}")
                self.stdout.write(f"granted {start}-{end} to {issuer.issuer_id}")

    def _remove(self, options):
        issuer = self._issuer(options["issuer_id"])
        start, end = self._parse(options["range"])
        grant = BinGrant.objects.filter(issuer=issuer, start=start, end=end).first()
        if grant is None:
            raise CommandError(f"{start}-{end}: {issuer.issuer_id} holds no such grant.")
        try:
            bin_grant_delete(grant=grant, actor=ACTOR)
        except ApplicationError as exc:
            raise CommandError(f"{start}-{end}: {exc.message}")
        self.stdout.write(f"removed {start}-{end} from {issuer.issuer_id}")

    def _attach_cards(self, options):
        result = bin_grant_attach_cards(issuer=self._issuer(options["issuer_id"]), every_card=options["all"])
        self.stdout.write(f"attached={result['attached']} unattached={result['unattached']}")
        if result["unattached"]:
            self.stderr.write(
                f"{result['unattached']} card(s) lie outside their issuer's grants: an AReq will not find them "
                "until the operator grants their BIN (bin_grants add) and runs attach-cards again."
            )
