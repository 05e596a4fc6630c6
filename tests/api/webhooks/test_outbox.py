"""The outbox hook runs only for events a webhook endpoint could want: an organisation with no
endpoint gets its events stored as dispatched, at no cost after commit."""

from api.events import emit
from api.models import Event
from api.webhooks import services
from api.webhooks.models import WebhookDelivery
from tests.api.webhooks.receiver import Receiver


def test_an_event_of_an_organisation_without_endpoints_is_stored_dispatched(
    organisation, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        (event,) = emit("capacity.updated", organisations=[organisation], data={"n": 1})
    assert callbacks == []
    stored = Event.objects.get(pk=event.pk)
    assert stored.dispatched_at is not None and stored.dispatched_at == event.dispatched_at
    assert stored.data == {"n": 1} and stored.type == "capacity.updated"
    assert not WebhookDelivery.objects.exists()


def test_an_event_an_endpoint_may_want_is_fanned_out_on_commit(
    organisation, make_organisation, django_capture_on_commit_callbacks
):
    with Receiver() as receiver:
        endpoint = services.endpoint_create(
            organisation=organisation, url=receiver.url, event_types=["*"]
        )
    other = make_organisation("No endpoints here")
    with django_capture_on_commit_callbacks() as callbacks:
        mine, theirs = emit(
            "referral.received", organisations=[organisation, other], data={"referral_id": "x"}
        )
    assert len(callbacks) == 1
    assert Event.objects.get(pk=mine.pk).dispatched_at is None
    assert Event.objects.get(pk=theirs.pk).dispatched_at is not None
    callbacks[0]()
    assert Event.objects.get(pk=mine.pk).dispatched_at is not None
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.event_id, delivery.endpoint_id) == (mine.pk, endpoint.pk)
