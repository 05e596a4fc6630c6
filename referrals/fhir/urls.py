"""Mounted at /fhir/ (api/urls.py): the base is /fhir/r4, where transaction Bundles are POSTed.
No trailing slashes: FHIR URLs are [base]/[type]/[id]."""

from django.urls import path

from referrals.fhir import views

app_name = "fhir"

# Each resource type: its search at [base]/[type], one resource at [base]/[type]/[id].
RESOURCES = (
    ("Task", "task", views.TaskSearchView, views.TaskView),
    ("ServiceRequest", "service-request", views.ServiceRequestSearchView, views.ServiceRequestView),
    ("Consent", "consent", views.ConsentSearchView, views.ConsentView),
    (
        "HealthcareService",
        "healthcare-service",
        views.HealthcareServiceSearchView,
        views.HealthcareServiceView,
    ),
    ("Organization", "organization", views.OrganizationSearchView, views.OrganizationView),
    ("Subscription", "subscription", views.SubscriptionSearchView, views.SubscriptionView),
)

urlpatterns = [
    path("r4", views.TransactionView.as_view(), name="transaction"),
    path("r4/metadata", views.CapabilityStatementView.as_view(), name="metadata"),
    *[
        route
        for resource_type, name, search_view, read_view in RESOURCES
        for route in (
            path(f"r4/{resource_type}", search_view.as_view(), name=f"{name}-search"),
            path(f"r4/{resource_type}/<uuid:pk>", read_view.as_view(), name=name),
        )
    ],
]
