from django.urls import path

from api.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/head", views.AuditHeadView.as_view(), name="head"),
    path(
        "referrals/<uuid:pk>/disclosures",
        views.ReferralDisclosureListView.as_view(),
        name="referral-disclosures",
    ),
    path("stats/referrals", views.ReferralStatsView.as_view(), name="stats-referrals"),
]
