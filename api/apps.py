from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "API plumbing"

    def ready(self):
        from api import checks  # noqa: F401 (registers the deploy checks)

        # The Celery app, before any task is sent: `shared_task` binds to the current app.
        from api.celery import app  # noqa: F401

        # Webhooks hear about outbox events on commit; importing the tasks registers them with
        # Celery (autodiscovery only looks at api.tasks).
        from api.events import on_event_committed
        from api.webhooks import tasks  # noqa: F401
        from api.webhooks.models import WebhookEndpoint
        from api.webhooks.services import on_events_committed

        on_event_committed(
            on_events_committed,
            wanted=f"EXISTS (SELECT 1 FROM {WebhookEndpoint._meta.db_table} w "  # noqa: S608
            "WHERE w.organisation_id = e.organisation_id)",
        )
