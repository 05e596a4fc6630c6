import json

from django.core.management.base import BaseCommand

from partners.demo import seed_demo


class Command(BaseCommand):
    help = "Seed the demo network (idempotent) and print its client ids and secrets."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        credentials = seed_demo()
        if options["json"]:
            self.stdout.write(json.dumps(credentials))
            return
        self.stdout.write("Demo organisations (client_id / client_secret):")
        for client_id, entry in credentials.items():
            self.stdout.write(
                f"  {entry['organisation']:<32} {client_id:<22} {entry['client_secret']}"
            )
