from django.urls import path

from referrals.api import audit_views, views

app_name = "referrals"

urlpatterns = [
    path("referrals", views.ReferralListCreateView.as_view(), name="list"),
    path("referrals/claim/<str:code>", views.ReferralClaimView.as_view(), name="claim"),
    path("referrals/<uuid:pk>", views.ReferralDetailView.as_view(), name="detail"),
    path("referrals/<uuid:pk>/notes", views.ReferralNotesView.as_view(), name="notes"),
    path("referrals/<uuid:pk>/timeline", views.ReferralTimelineView.as_view(), name="timeline"),
    path(
        "referrals/<uuid:pk>/disclosures",
        audit_views.ReferralDisclosureListView.as_view(),
        name="disclosures",
    ),
    path("stats/referrals", audit_views.ReferralStatsView.as_view(), name="stats"),
    path(
        "referrals/<uuid:pk>/consent/revoke",
        views.ReferralConsentRevokeView.as_view(),
        name="consent-revoke",
    ),
    path(
        "referrals/<uuid:pk>/consent/renew",
        views.ReferralConsentRenewView.as_view(),
        name="consent-renew",
    ),
    path(
        "referrals/<uuid:pk>/safe-contact",
        views.ReferralSafeContactView.as_view(),
        name="safe-contact",
    ),
    *[
        path(f"referrals/<uuid:pk>/{action}", view.as_view(), name=action)
        for action, view in views.TRANSITION_VIEWS.items()
    ],
]
