"""Which 404s are refusals, and what their audit entries name. Another organisation's object
answers exactly like an unknown id, and the work behind the two answers must be the same too:
a look-up that wrote an entry only when it found the object made a foreign id measurably slower
and so confirmed that it exists. The middleware therefore records every 404 on a route that
names an object, as a denial, with the id as it was asked for and without looking it up;
stewards can tell a probe of a real object from a typo by checking the id themselves."""

# Route name (or a prefix ending in ":" or "-") -> the kind of object its URL names, where the
# view's queryset is of another kind or absent. The longest matching key wins.
ROUTE_OBJECTS = {
    "referrals:": "referral",
    "organisation-detail": "organisation",
    "hsds-organization-detail": "organisation",
    "service-": "service",
    "hsds-service-detail": "service",
    "partnership-": "partnership",
    "webhook-endpoint-": "webhookendpoint",
    "delivery-redeliver": "webhookdelivery",
    # The FHIR facade: Task, ServiceRequest and Consent are views of one referral.
    "fhir:task": "referral",
    "fhir:service-request": "referral",
    "fhir:consent": "referral",
    "fhir:healthcare-service": "service",
    "fhir:organization": "organisation",
    "fhir:subscription": "webhookendpoint",
}


def route_object_type(view_name: str) -> str:
    """The kind of object a route names, or "" when the table does not say."""
    matches = [
        key
        for key in ROUTE_OBJECTS
        if view_name == key or (key.endswith((":", "-")) and view_name.startswith(key))
    ]
    return ROUTE_OBJECTS[max(matches, key=len)] if matches else ""


def is_denial(request, status: int) -> bool:
    """A 404 to an authenticated caller on a route whose URL names an object (by id, or by a
    claim code, which the entry leaves out)."""
    match = getattr(request, "resolver_match", None)
    return (
        status == 404
        and match is not None
        and bool(match.kwargs)
        and getattr(request, "organisation", None) is not None
    )
