"""Test-only views mounted beside the real URLs (`@pytest.mark.urls("tests.api.urls")`): a
scoped endpoint that validates a body, and views that fail, so the error paths of the shared
plumbing can be exercised without depending on another app's endpoints."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.urls import path
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from api import errors
from api.urls import urlpatterns as api_urlpatterns
from partners.models import Organisation


class ProbeItemSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0)


class ProbeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=20)
    items = ProbeItemSerializer(many=True)


class ProbeView(APIView):
    required_scopes = {"GET": ["referrals:read"], "POST": ["directory:write", "referrals:write"]}

    def get(self, request):
        return Response({"ok": True})

    def post(self, request):
        serializer = ProbeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=201)


class UndeclaredView(APIView):
    """Declares GET but not DELETE: DELETE must be refused, not open."""

    required_scopes = {"GET": []}

    def get(self, request):
        return Response({"ok": True})

    def delete(self, request):
        return Response(status=204)


class BoomView(APIView):
    required_scopes: list[str] = []

    def get(self, request):
        raise RuntimeError("boom-marker: an internal detail that must not leak")


class ProbeOrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name"]


class ProbeListView(ListAPIView):
    """A list with the project's default pagination, as every real list has."""

    required_scopes: list[str] = []
    queryset = Organisation.objects.all()
    serializer_class = ProbeOrganisationSerializer


class DomainErrorView(APIView):
    """Raises the DomainError subclass named in the URL, as a service would."""

    required_scopes: list[str] = []

    def get(self, request, kind):
        error = getattr(errors, kind)
        if error is errors.InvalidInput:
            raise error("Bad fields.", errors=[{"pointer": "/x", "detail": "Wrong."}])
        raise error(f"{kind} happened.", hint="extension-member")


def plain_boom(request):
    raise ValueError("plain-boom-marker")


def plain_raises(request, kind):
    """Django's own exceptions from a view that is not DRF's."""
    raise {
        "404": Http404("plain-404-marker"),
        "403": PermissionDenied("plain-403-marker"),
        "400": SuspiciousOperation("plain-400-marker"),
    }[kind]


urlpatterns = [
    path("api/v1/_probe", ProbeView.as_view()),
    path("api/v1/_boom", BoomView.as_view()),
    path("api/v1/_undeclared", UndeclaredView.as_view()),
    path("api/v1/_organisations", ProbeListView.as_view()),
    path("api/v1/_domain/<str:kind>", DomainErrorView.as_view()),
    path("_plain_boom", plain_boom),
    path("_plain/<str:kind>", plain_raises),
    *api_urlpatterns,
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
