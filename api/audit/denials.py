"""Which 404s are refusals. A 404 for an object that exists means it belongs to another
organisation (the API answers exactly as for an unknown id); the caller is probing or
misconfigured, and the audit trail should say so. The middleware checks the routes below after
the response, so no view has to; views may also call services.audit_denied explicitly."""

from django.apps import apps

# Route name (or a prefix ending in ":" or "-") -> (model, URL kwarg, model field).
# The longest matching key wins.
LOOKUPS = {
    "referrals:": ("referrals.Referral", "pk", "pk"),
    "referrals:claim": ("referrals.Referral", "code", "claim_code"),
    "audit:referral-disclosures": ("referrals.Referral", "pk", "pk"),
    "organisation-detail": ("partners.Organisation", "pk", "pk"),
    "hsds-organization-detail": ("partners.Organisation", "pk", "pk"),
    "service-": ("partners.Service", "pk", "pk"),
    "hsds-service-detail": ("partners.Service", "pk", "pk"),
    "partnership-": ("partners.Partnership", "pk", "pk"),
}


def _lookup_for(view_name: str):
    matches = [
        key
        for key in LOOKUPS
        if view_name == key or (key.endswith((":", "-")) and view_name.startswith(key))
    ]
    return LOOKUPS[max(matches, key=len)] if matches else None


def route_object_type(view_name: str) -> str:
    """The kind of object a route's `pk` names, for views that declare no queryset."""
    lookup = _lookup_for(view_name)
    return lookup[0].rpartition(".")[2].lower() if lookup else ""


def denied_object(match) -> tuple[str, str] | None:
    """(object type, object id) when a 404 on this route hid an object that exists."""
    lookup = _lookup_for(match.view_name)
    if lookup is None:
        return None
    label, kwarg, field = lookup
    value = match.kwargs.get(kwarg)
    if value is None:
        return None
    model = apps.get_model(label)
    if field == "claim_code":
        value = str(value).strip().upper()
    found = model.objects.filter(**{field: value}).values_list("pk", flat=True).first()
    if found is None:
        return None
    return model._meta.model_name, str(found)
