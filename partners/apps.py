from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partner directory"

    def ready(self):
        from api import retention
        from partners.retention import JOBS

        retention.register(*JOBS)
