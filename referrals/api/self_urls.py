from django.urls import path

from referrals.api import self_views

app_name = "self"

urlpatterns = [
    path("self/token", self_views.SelfTokenView.as_view(), name="token"),
    path("self/status", self_views.SelfStatusView.as_view(), name="status"),
    path("self/disclosures", self_views.SelfDisclosuresView.as_view(), name="disclosures"),
    path("self/withdraw", self_views.SelfWithdrawView.as_view(), name="withdraw"),
    path("self/safe-contact", self_views.SelfSafeContactView.as_view(), name="safe-contact"),
]
