from django.urls import path

from referrals.api import audit_views, views

app_name = "referrals"

# What one referral offers, under referrals/<id>/: (path, route name, view).
ONE_REFERRAL = (
    ("notes", "notes", views.ReferralNotesView),
    ("timeline", "timeline", views.ReferralTimelineView),
    ("disclosures", "disclosures", audit_views.ReferralDisclosureListView),
    ("consent/revoke", "consent-revoke", views.ReferralConsentRevokeView),
    ("consent/renew", "consent-renew", views.ReferralConsentRenewView),
    ("safe-contact", "safe-contact", views.ReferralSafeContactView),
    *[(action, action, view) for action, view in views.TRANSITION_VIEWS.items()],
)

urlpatterns = [
    path("referrals", views.ReferralListCreateView.as_view(), name="list"),
    path("referrals/claim/<str:code>", views.ReferralClaimView.as_view(), name="claim"),
    path("referrals/<uuid:pk>", views.ReferralDetailView.as_view(), name="detail"),
    path("stats/referrals", audit_views.ReferralStatsView.as_view(), name="stats"),
    *[
        path(f"referrals/<uuid:pk>/{subpath}", view.as_view(), name=name)
        for subpath, name, view in ONE_REFERRAL
    ],
]
