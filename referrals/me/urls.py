"""No trailing slashes, like the API; `me/` only redirects, because people type what they see
printed or remember, and a 404 there would leave them with nothing."""

from django.urls import path
from django.views.generic import RedirectView

from referrals.me import views

app_name = "me"

urlpatterns = [
    path("me", views.page, name="page"),
    path("me/", RedirectView.as_view(pattern_name="me:page"), name="slash"),
    path("me/contact", views.contact, name="contact"),
    path("me/withdraw", views.withdraw, name="withdraw"),
    path("me/exit", views.leave, name="exit"),
]
