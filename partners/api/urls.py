"""The directory API's routes: path -> (view, URL name), in the order they are matched."""

from django.urls import path

from partners.api import hsds, imports, views

ROUTES = {
    "me": (views.MeView, "me"),
    "organisations": (views.OrganisationListView, "organisation-list"),
    "organisations/me": (views.OrganisationMeView, "organisation-me"),
    "organisations/<uuid:pk>": (views.OrganisationDetailView, "organisation-detail"),
    "taxonomy-terms": (views.TaxonomyTermListView, "taxonomy-term-list"),
    "services": (views.ServiceListView, "service-list"),
    "services/search": (views.ServiceSearchView, "service-search"),
    "services/<uuid:pk>": (views.ServiceDetailView, "service-detail"),
    "services/<uuid:pk>/deactivate": (views.ServiceDeactivateView, "service-deactivate"),
    "services/<uuid:pk>/capacity": (views.CapacityView, "service-capacity"),
    "services/<uuid:pk>/capacity/history": (views.CapacityHistoryView, "service-capacity-history"),
    "capacity/bulk": (views.CapacityBulkView, "capacity-bulk"),
    "partnerships": (views.PartnershipListView, "partnership-list"),
    "partnerships/<uuid:pk>": (views.PartnershipDetailView, "partnership-detail"),
    **{
        f"partnerships/<uuid:pk>/{action}": (view, f"partnership-{action}")
        for action, view in views.PARTNERSHIP_ACTION_VIEWS.items()
    },
    "directory/imports": (imports.DirectoryImportListView, "directory-import-list"),
    "directory/imports/<uuid:pk>": (imports.DirectoryImportDetailView, "directory-import-detail"),
    "hsds": (hsds.HsdsRootView, "hsds-root"),
    "hsds/services": (hsds.HsdsServiceListView, "hsds-service-list"),
    "hsds/services/<uuid:pk>": (hsds.HsdsServiceDetailView, "hsds-service-detail"),
    "hsds/organizations": (hsds.HsdsOrganizationListView, "hsds-organization-list"),
    "hsds/organizations/<uuid:pk>": (hsds.HsdsOrganizationDetailView, "hsds-organization-detail"),
    "hsds/service_at_locations": (
        hsds.HsdsServiceAtLocationListView,
        "hsds-service-at-location-list",
    ),
    "hsds/service_at_locations/<uuid:pk>": (
        hsds.HsdsServiceAtLocationDetailView,
        "hsds-service-at-location-detail",
    ),
    "hsds/taxonomies": (hsds.HsdsTaxonomyListView, "hsds-taxonomy-list"),
    "hsds/taxonomies/<uuid:pk>": (hsds.HsdsTaxonomyDetailView, "hsds-taxonomy-detail"),
    "hsds/taxonomy_terms": (hsds.HsdsTaxonomyTermListView, "hsds-taxonomy-term-list"),
    "hsds/taxonomy_terms/<uuid:pk>": (hsds.HsdsTaxonomyTermDetailView, "hsds-taxonomy-term-detail"),
}

urlpatterns = [path(route, view.as_view(), name=name) for route, (view, name) in ROUTES.items()]
