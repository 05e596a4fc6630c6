from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from api import health, oauth, problems, schema

oauth_patterns = (
    [
        path("token", oauth.TokenView.as_view(), name="token"),
        path("revoke_token", oauth.RevokeTokenView.as_view(), name="revoke-token"),
        path("introspect", oauth.IntrospectTokenView.as_view(), name="introspect"),
    ],
    "oauth",
)

api_v1 = [
    path("", include("partners.api.urls")),
    path("", include("referrals.api.urls")),
    path("", include("referrals.api.self_urls")),
    path("", include("api.webhooks.urls")),
    path("", include("api.audit.urls")),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("oauth/", include(oauth_patterns)),
    # The FHIR R4 facade (referrals/fhir): documented by its own CapabilityStatement.
    path("fhir/", include("referrals.fhir.urls")),
    path(
        ".well-known/oauth-authorization-server",
        oauth.authorization_server_metadata,
        name="oauth-metadata",
    ),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/redoc", schema.RedocView.as_view(url_name="schema"), name="redoc"),
    # Each problem document's `type` resolves to its page (api/problems.py).
    path("problems", problems.index, name="problems"),
    path("problems/<slug:code>", problems.page, name="problem"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("referrals.me.urls")),
]

handler400 = "api.errors.handler400"
handler403 = "api.errors.handler403"
handler404 = "api.errors.handler404"
handler500 = "api.errors.handler500"
