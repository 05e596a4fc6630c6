"""The CapabilityStatement, built from the routes themselves: each view says which FHIR
interaction each of its methods is, its search parameters and its scopes, so the statement
lists exactly what is served (tests/api/test_routes_documented.py holds the two equal)."""

from django.conf import settings

from referrals.fhir import codes
from referrals.fhir.resources import concept

# Changes when what the statement says changes.
DATE = "2026-11-29"
SYSTEM_INTERACTIONS = {"transaction"}
NOT_LISTED = {"capabilities"}  # `metadata` is the statement itself
VERSIONED = {"Task", "ServiceRequest", "Consent"}
CONDITIONAL_CREATE = {"Task", "ServiceRequest", "Consent"}
PROFILES = {
    "Task": codes.TASK_PROFILE,
    "ServiceRequest": codes.SERVICE_REQUEST_PROFILE,
    "Consent": codes.CONSENT_PROFILE,
    "HealthcareService": codes.HEALTHCARE_SERVICE_PROFILE,
    "Subscription": codes.BACKPORT_SUBSCRIPTION_PROFILE,
}
DOCUMENTATION = {
    "Task": "The referral's lifecycle (metadata only; readable after the personal data is "
    "gone). PUT or PATCH (JSON Patch) of status, businessStatus, statusReason or output drives "
    'the REST transitions; If-Match with W/"version" is required (428 without, 412 stale).',
    "ServiceRequest": "What is asked for, the person contained as a pseudonymous Patient. A "
    "read opens personal data: 410 once consent is withdrawn or expired or retention ended, "
    "409 to a receiver whose partnership is suspended; every read is logged as a disclosure. "
    "Searches give summaries (tagged SUBSETTED) without personal data.",
    "Consent": "The person's agreement. Withdraw it with status inactive (PUT or PATCH; no "
    "If-Match: a withdrawal never bounces): its personal data is destroyed for both sides and "
    "reads answer 410. Searches give summaries.",
    "HealthcareService": "The directory's services with the SDOH Clinical Care capacity-status "
    "extension (STU 3); no locations.",
    "Organization": "The directory's organisations.",
    "Subscription": "R4 Subscriptions backport: the SDOH Clinical Care Task topic, rest-hook, "
    "id-only, filters owner, requester, status and code. Delivered by the webhook outbox: "
    "Standard Webhooks signatures (the secret is in the create answer only), retries, address "
    "checks. Handshake on create; heartbeats when a period is set.",
}


def _security(token_url: str) -> dict:
    rows = "\n".join(
        f"| `{scope}` | {access} |"
        for scope, access in (
            ("referrals:read", "read and search Task, ServiceRequest and Consent"),
            ("referrals:write", "create (transaction) and update Task and Consent"),
            ("directory:read", "read and search HealthcareService and Organization"),
            ("webhooks:manage", "Subscription (creating one also needs `referrals:read`)"),
        )
    )
    return {
        "extension": [
            {"url": codes.OAUTH_URIS, "extension": [{"url": "token", "valueUri": token_url}]}
        ],
        "cors": False,
        "service": [concept(codes.RESTFUL_SECURITY, "OAuth", "OAuth")],
        "description": "OAuth 2.0 client credentials, the same clients, tokens and scopes as "
        "the REST API (token in the Authorization header only).\n\n| scope | FHIR access |\n"
        "| --- | --- |\n" + rows + "\n\nTenancy is the REST API's: another organisation's "
        "resource answers 404, the same as an unknown id.",
    }


def _scopes(view, method: str) -> str:
    required = getattr(view, "required_scopes", None) or {}
    scopes = required.get(method.upper(), [])
    return "Needs " + " and ".join(f"`{scope}`" for scope in scopes) + "." if scopes else ""


def statement(base: str, token_url: str) -> dict:
    from referrals.fhir.urls import urlpatterns

    by_type: dict[str, dict] = {}
    system = []
    for pattern in urlpatterns:
        view = pattern.callback.view_class
        for method, interaction in view.interactions.items():
            if interaction in NOT_LISTED:
                continue
            entry = {"code": interaction, "documentation": _scopes(view, method)}
            if interaction in SYSTEM_INTERACTIONS:
                system.append(entry)
                continue
            resource = by_type.setdefault(view.resource_type, {"interaction": []})
            resource["interaction"].append(entry)
            for parameter in (
                getattr(view, "parameters", ()) if interaction == "search-type" else ()
            ):
                resource.setdefault("searchParam", []).append(
                    {
                        "name": parameter.name,
                        "type": parameter.type,
                        "documentation": parameter.documentation,
                    }
                )
    resources = []
    for resource_type, found in by_type.items():
        resource = {
            "type": resource_type,
            "supportedProfile": [PROFILES[resource_type]] if resource_type in PROFILES else None,
            "documentation": DOCUMENTATION[resource_type],
            "interaction": found["interaction"],
            "versioning": "versioned" if resource_type in VERSIONED else "no-version",
            "readHistory": False,
            "updateCreate": False,
            "conditionalCreate": resource_type in CONDITIONAL_CREATE,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": found.get("searchParam"),
        }
        if resource_type == "Subscription":
            resource["extension"] = [
                {"url": codes.BACKPORT_TOPIC_CANONICAL, "valueCanonical": codes.TASK_TOPIC}
            ]
        resources.append({key: value for key, value in resource.items() if value is not None})
    return {
        "resourceType": "CapabilityStatement",
        "id": "srn-fhir-r4",
        "name": "SolidarityReferralNetworkFHIR",
        "title": "Solidarity Referral Network: FHIR R4 facade",
        "status": "active",
        "experimental": False,
        "date": DATE,
        "publisher": "Solidarity Referral Network",
        "description": "Consent-bound referrals between community organisations and clinics, "
        "following the SDOH Clinical Care guide: the same referrals, rules, encryption, consent "
        "and audit as the REST API. JSON only. The person is never a Patient resource of its "
        "own: a pseudonymous Patient contained in the ServiceRequest, never with an "
        "identifier, birth date or address.",
        "kind": "instance",
        "instantiates": [f"{codes.BACKPORT_SERVER}|{codes.BACKPORT_VERSION}"],
        "software": {
            "name": "Solidarity Referral Network API",
            "version": settings.SPECTACULAR_SETTINGS["VERSION"],
        },
        "implementation": {"description": "Solidarity Referral Network FHIR facade", "url": base},
        "fhirVersion": codes.FHIR_VERSION,
        "format": ["json", codes.JSON],
        "patchFormat": ["application/json-patch+json"],
        "implementationGuide": [
            f"{codes.SDOHCC}/ImplementationGuide/hl7.fhir.us.sdoh-clinicalcare|{codes.SDOHCC_VERSION}",
            f"{codes.BACKPORT}/ImplementationGuide/hl7.fhir.uv.subscriptions-backport|{codes.BACKPORT_VERSION}",
        ],
        "rest": [
            {
                "mode": "server",
                "documentation": "Create a referral by POSTing a transaction Bundle (one "
                "ServiceRequest with the person contained, one Task, one Consent) to the base, "
                "with an Idempotency-Key or If-None-Exist. Searches page with `next` links "
                "(`_count` up to 100). Errors are OperationOutcomes.",
                "security": _security(token_url),
                "resource": resources,
                "interaction": system,
            }
        ],
    }
