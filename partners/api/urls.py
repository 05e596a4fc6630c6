from django.urls import path

from partners.api import views

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
]
