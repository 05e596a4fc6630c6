from django.apps import AppConfig


class ReferralsConfig(AppConfig):
    name = "referrals"
    verbose_name = "Referrals"

    def ready(self):
        # The FHIR facade: its errors are OperationOutcomes, its Subscriptions' deliveries are
        # notification Bundles, and importing its tasks registers them with Celery.
        from api import retention
        from api.errors import register_error_shape
        from api.webhooks.services import register_payload_format
        from referrals import checks  # noqa: F401 (registers the deploy check)
        from referrals.fhir import tasks  # noqa: F401
        from referrals.fhir.http import operation_outcome
        from referrals.fhir.services import PAYLOAD_FORMAT
        from referrals.fhir.subscriptions import notification
        from referrals.retention import JOBS

        register_error_shape("/fhir/r4", operation_outcome)
        register_payload_format(PAYLOAD_FORMAT, notification)
        retention.register(*JOBS)
