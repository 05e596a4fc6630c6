from django.urls import path

from api.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/head", views.AuditHeadView.as_view(), name="head"),
]
