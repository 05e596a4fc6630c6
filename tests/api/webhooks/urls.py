"""Only the webhook routes, so these tests do not depend on other apps' URL modules."""

from django.urls import include, path

urlpatterns = [path("api/v1/", include("api.webhooks.urls"))]
