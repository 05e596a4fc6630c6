"""A URLconf for the middleware tests: the real one plus a scoped write view and a view that
finds another organisation's object."""

from django.urls import include, path
from rest_framework.response import Response
from rest_framework.views import APIView

from api.audit.services import audit_denied
from api.errors import NotFound
from partners.models import Organisation


class ThingView(APIView):
    queryset = Organisation.objects.none()
    required_scopes = {"POST": ["directory:write"], "GET": ["directory:read"]}

    def post(self, request, pk):
        return Response({"ok": True}, status=201)

    def get(self, request, pk):
        other = Organisation.objects.exclude(pk=request.organisation.pk).filter(pk=pk).first()
        if other is not None:
            audit_denied(request, "organisation", pk)
        raise NotFound("No such organisation.")


urlpatterns = [
    path("api/v1/test-things/<uuid:pk>", ThingView.as_view(), name="test-thing"),
    path("", include("api.urls")),
]
