from django.urls import path

from partners.api import hsds, imports, views

urlpatterns = [
    path("me", views.MeView.as_view(), name="me"),
    path("organisations", views.OrganisationListView.as_view(), name="organisation-list"),
    path("organisations/me", views.OrganisationMeView.as_view(), name="organisation-me"),
    path(
        "organisations/<uuid:pk>",
        views.OrganisationDetailView.as_view(),
        name="organisation-detail",
    ),
    path("taxonomy-terms", views.TaxonomyTermListView.as_view(), name="taxonomy-term-list"),
    path("services", views.ServiceListView.as_view(), name="service-list"),
    path("services/search", views.ServiceSearchView.as_view(), name="service-search"),
    path("services/<uuid:pk>", views.ServiceDetailView.as_view(), name="service-detail"),
    path(
        "services/<uuid:pk>/deactivate",
        views.ServiceDeactivateView.as_view(),
        name="service-deactivate",
    ),
    path("services/<uuid:pk>/capacity", views.CapacityView.as_view(), name="service-capacity"),
    path(
        "services/<uuid:pk>/capacity/history",
        views.CapacityHistoryView.as_view(),
        name="service-capacity-history",
    ),
    path("capacity/bulk", views.CapacityBulkView.as_view(), name="capacity-bulk"),
    path("partnerships", views.PartnershipListView.as_view(), name="partnership-list"),
    path(
        "partnerships/<uuid:pk>",
        views.PartnershipDetailView.as_view(),
        name="partnership-detail",
    ),
    *[
        path(f"partnerships/<uuid:pk>/{action}", view.as_view(), name=f"partnership-{action}")
        for action, view in views.PARTNERSHIP_ACTION_VIEWS.items()
    ],
    path(
        "directory/imports",
        imports.DirectoryImportListView.as_view(),
        name="directory-import-list",
    ),
    path(
        "directory/imports/<uuid:pk>",
        imports.DirectoryImportDetailView.as_view(),
        name="directory-import-detail",
    ),
    path("hsds", hsds.HsdsRootView.as_view(), name="hsds-root"),
    path("hsds/services", hsds.HsdsServiceListView.as_view(), name="hsds-service-list"),
    path(
        "hsds/services/<uuid:pk>",
        hsds.HsdsServiceDetailView.as_view(),
        name="hsds-service-detail",
    ),
    path(
        "hsds/organizations",
        hsds.HsdsOrganizationListView.as_view(),
        name="hsds-organization-list",
    ),
    path(
        "hsds/organizations/<uuid:pk>",
        hsds.HsdsOrganizationDetailView.as_view(),
        name="hsds-organization-detail",
    ),
    path(
        "hsds/service_at_locations",
        hsds.HsdsServiceAtLocationListView.as_view(),
        name="hsds-service-at-location-list",
    ),
    path(
        "hsds/service_at_locations/<uuid:pk>",
        hsds.HsdsServiceAtLocationDetailView.as_view(),
        name="hsds-service-at-location-detail",
    ),
    path("hsds/taxonomies", hsds.HsdsTaxonomyListView.as_view(), name="hsds-taxonomy-list"),
    path(
        "hsds/taxonomies/<uuid:pk>",
        hsds.HsdsTaxonomyDetailView.as_view(),
        name="hsds-taxonomy-detail",
    ),
    path(
        "hsds/taxonomy_terms",
        hsds.HsdsTaxonomyTermListView.as_view(),
        name="hsds-taxonomy-term-list",
    ),
    path(
        "hsds/taxonomy_terms/<uuid:pk>",
        hsds.HsdsTaxonomyTermDetailView.as_view(),
        name="hsds-taxonomy-term-detail",
    ),
]
