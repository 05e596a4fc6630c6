from django.urls import re_path
from rest_framework.routers import SimpleRouter

from api.webhooks import views

# No trailing slash, like every route (a path with one is a 404 naming the right one).
router = SimpleRouter(trailing_slash="")
router.register("webhook-endpoints", views.WebhookEndpointViewSet, basename="webhook-endpoint")

urlpatterns = [
    *router.urls,
    re_path(
        r"^deliveries/(?P<id>[0-9a-fA-F-]{36})/redeliver$",
        views.WebhookDeliveryRedeliverView.as_view(),
        name="delivery-redeliver",
    ),
]
