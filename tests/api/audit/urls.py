"""A URLconf for the middleware tests: the real one plus a scoped write view that answers 404
to every read, as for another organisation's object."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from api.errors import NotFound
from partners.models import Organisation


class ThingView(APIView):
    queryset = Organisation.objects.none()
    required_scopes = {"POST": ["directory:write"], "GET": ["directory:read"]}

    def post(self, request, pk):
        return Response({"ok": True}, status=201)

    def get(self, request, pk):
        raise NotFound("No such organisation.")


urlpatterns = [
    path("api/v1/test-things/<uuid:pk>", ThingView.as_view(), name="test-thing"),
    path("", include("api.urls")),
]
