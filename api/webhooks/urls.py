from django.urls import re_path
from rest_framework.routers import SimpleRouter

from api.webhooks import views

# "/?" like the router below, so both spellings work and the schema shows one.
router = SimpleRouter(trailing_slash="/?")
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    *router.urls,
    re_path(
        r"^deliveries/(?P<id>[0-9a-fA-F-]{36})/redeliver/?$",
        views.WebhookDeliveryRedeliverView.as_view(),
        name="delivery-redeliver",
    ),
]
