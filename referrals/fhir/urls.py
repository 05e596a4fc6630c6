"""Mounted at /fhir/ (api/urls.py): the base is /fhir/r4, where transaction Bundles are POSTed.
No trailing slashes: FHIR URLs are [base]/[type]/[id]."""

from django.urls import path

from referrals.fhir import views

app_name = "fhir"

urlpatterns = [
    path("r4", views.TransactionView.as_view(), name="transaction"),
    path("r4/metadata", views.CapabilityStatementView.as_view(), name="metadata"),
    path("r4/Task", views.TaskSearchView.as_view(), name="task-search"),
    path("r4/Task/<uuid:pk>", views.TaskView.as_view(), name="task"),
    path(
        "r4/ServiceRequest", views.ServiceRequestSearchView.as_view(), name="service-request-search"
    ),
    path("r4/ServiceRequest/<uuid:pk>", views.ServiceRequestView.as_view(), name="service-request"),
    path("r4/Consent", views.ConsentSearchView.as_view(), name="consent-search"),
    path("r4/Consent/<uuid:pk>", views.ConsentView.as_view(), name="consent"),
    path(
        "r4/HealthcareService",
        views.HealthcareServiceSearchView.as_view(),
        name="healthcare-service-search",
    ),
    path(
        "r4/HealthcareService/<uuid:pk>",
        views.HealthcareServiceView.as_view(),
        name="healthcare-service",
    ),
    path("r4/Organization", views.OrganizationSearchView.as_view(), name="organization-search"),
    path("r4/Organization/<uuid:pk>", views.OrganizationView.as_view(), name="organization"),
    path("r4/Subscription", views.SubscriptionSearchView.as_view(), name="subscription-search"),
    path("r4/Subscription/<uuid:pk>", views.SubscriptionView.as_view(), name="subscription"),
]
