"""Referrals, services, organisations and subscriptions as FHIR R4 resources (plain dicts, ready
for JSON). Only shapes: what may be shown, and to whom, was decided by the selector that loaded
the data. The person is never a resource of their own: a pseudonymous Patient contained in the
ServiceRequest, with no identifier, birth date or address (there are none to show)."""

from datetime import datetime

from api.timestamps import iso
from partners.models import SAFEGUARDS, Organisation, OrganisationKind, Service, ServiceStatus
from referrals.fhir import codes
from referrals.models import (
    ConsentPurpose,
    DeclineReason,
    Outcome,
    PersonalDataState,
    Referral,
    Status,
)

PATIENT_ID = "patient"
# Task.for and Consent.patient name the person without pointing anywhere: the network keeps no
# Patient record, and a contained one can only be referenced from inside its own resource.
PERSON = {
    "type": "Patient",
    "display": "The person referred: pseudonymous, contained in the ServiceRequest",
}
STATUS_REASONS = {
    Status.CANCELLED: "Cancelled by the sending organisation.",
    Status.ON_HOLD: "Waitlisted by the receiving organisation.",
    Status.EXPIRED: "Not answered by the time it was due (its restriction period ended).",
}


def instant(value: datetime | None) -> str | None:
    """A FHIR instant in UTC with `Z`, as the REST API writes times."""
    return iso(value)


def reference(resource_type: str, pk) -> dict:
    return {"reference": f"{resource_type}/{pk}"}


def coding(system: str, code: str, display: str | None = None) -> dict:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict:
    out = {"coding": [coding(system, code, display)]}
    if display:
        out["text"] = display
    return out


def _meta(referral: Referral, profile: str, *, subsetted: bool = False) -> dict:
    """One referral is three resources; a change to it is a new version of each."""
    meta = {
        "versionId": str(referral.version),
        "lastUpdated": instant(referral.updated),
        "profile": [profile],
    }
    if subsetted:
        meta["tag"] = [coding(*codes.SUBSETTED, "Resource encoded in summary mode")]
    return meta


def compact(resource: dict) -> dict:
    return {key: value for key, value in resource.items() if value not in (None, [], {})}


# --- Task ------------------------------------------------------------------------------------


def task(referral: Referral) -> dict:
    """The lifecycle between the two organisations: metadata only, so it stays readable after
    the personal data is gone, as the REST summary does."""
    status = Status(referral.status)
    reason = None
    if status == Status.DECLINED and referral.decline_reason:
        label = DeclineReason(referral.decline_reason).label
        reason = concept(codes.DECLINE_REASON, referral.decline_reason, label)
    elif status in STATUS_REASONS:
        reason = {"text": STATUS_REASONS[status]}
    output = None
    if referral.outcome:
        output = [
            {
                "type": concept(codes.TASK_OUTPUT, "outcome", "Outcome"),
                "valueCodeableConcept": concept(
                    codes.OUTCOME, referral.outcome, Outcome(referral.outcome).label
                ),
            }
        ]
    return compact(
        {
            "resourceType": "Task",
            "id": str(referral.pk),
            "meta": _meta(referral, codes.TASK_PROFILE),
            "identifier": [{"system": codes.CLAIM_CODE, "value": referral.claim_code}]
            if referral.claim_code
            else None,
            "status": codes.TASK_STATUS[status],
            "statusReason": reason,
            "businessStatus": concept(codes.REFERRAL_STATUS, status.value, status.label),
            "intent": "order",
            "priority": codes.PRIORITY[referral.urgency],
            "code": concept(codes.TASK_CODE, "fulfill", "Fulfill the focal request"),
            "focus": reference("ServiceRequest", referral.pk),
            "for": PERSON,
            "authoredOn": instant(referral.created),
            "lastModified": instant(referral.updated),
            "requester": reference("Organization", referral.sender_id),
            "owner": reference("Organization", referral.receiver_id),
            "restriction": {"period": {"end": instant(referral.respond_by)}},
            "output": output,
        }
    )


# --- ServiceRequest and its contained Patient --------------------------------------------------


def _extension(url: str, value_type: str, value) -> dict | None:
    if value is None or value == "":
        return None
    return {"url": url, f"value{value_type}": value}


SAFE_CONTACT_PARTS = (
    ("do-not-contact", "do_not_contact", "Boolean"),
    ("channel", "channels", "Code"),
    ("safe-times", "safe_times", "String"),
    ("voicemail-ok", "voicemail_ok", "Boolean"),
    ("may-name-organisation", "may_name_organisation", "Boolean"),
    ("neutral-name", "neutral_name", "String"),
    ("code-word", "code_word", "String"),
    ("instructions", "instructions", "String"),
)
TELECOM_SYSTEMS = (("phone", "phone"), ("email", "email"), ("handle", "other"))


def _safe_contact(safe_contact: dict) -> dict:
    parts = []
    for url, name, value_type in SAFE_CONTACT_PARTS:
        value = safe_contact.get(name)
        for item in value if isinstance(value, list) else [value]:
            part = _extension(url, value_type, item)
            if part is not None:
                parts.append(part)
    return {"url": codes.SAFE_CONTACT, "extension": parts}


def patient(personal: dict) -> dict:
    """Safe contact first: reaching out the wrong way can put the person in danger."""
    person = personal.get("person", {})
    extensions = [_safe_contact(personal.get("safe_contact", {}))]
    if person.get("pronouns"):
        extensions.append(
            {
                "url": codes.PRONOUNS,
                "extension": [
                    {"url": "value", "valueCodeableConcept": {"text": person["pronouns"]}}
                ],
            }
        )
    if person.get("age_band"):
        extensions.append(
            {
                "url": codes.AGE_BAND_EXTENSION,
                "valueCodeableConcept": concept(codes.AGE_BAND, person["age_band"]),
            }
        )
    if person.get("interpreter_needed") is not None:
        extensions.append(
            {"url": codes.INTERPRETER_REQUIRED, "valueBoolean": person["interpreter_needed"]}
        )
    contact = personal.get("contact", {})
    return compact(
        {
            "resourceType": "Patient",
            "id": PATIENT_ID,
            "extension": extensions,
            "name": [{"use": "anonymous", "text": person["name"]}] if person.get("name") else None,
            "telecom": [
                {"system": system, "value": contact[name]}
                for name, system in TELECOM_SYSTEMS
                if contact.get(name)
            ],
            "communication": [
                {"language": concept(codes.BCP47, language)}
                for language in person.get("languages", [])
            ],
        }
    )


def service_request(referral: Referral, personal: dict | None = None) -> dict:
    """With `personal` (from the gated, disclosed read): the whole request, the person
    contained. Without: the summary that searches show, tagged SUBSETTED."""
    resource = {
        "resourceType": "ServiceRequest",
        "id": str(referral.pk),
        "meta": _meta(referral, codes.SERVICE_REQUEST_PROFILE, subsetted=personal is None),
        "status": codes.SERVICE_REQUEST_STATUS.get(referral.status, "active"),
        "intent": "order",
        "category": [concept(codes.TAXONOMY, code) for code in referral.needs],
        "priority": codes.PRIORITY[referral.urgency],
        "subject": PERSON,
        "authoredOn": instant(referral.created),
        "requester": reference("Organization", referral.sender_id),
        "performer": [reference("HealthcareService", referral.service_id)],
        "supportingInfo": [reference("Consent", referral.pk)],
    }
    if personal is not None:
        resource["contained"] = [patient(personal)]
        resource["subject"] = {"reference": f"#{PATIENT_ID}"}
        resource["extension"] = [
            extension
            for extension in (
                _extension(codes.HEALTH_DETAILS, "String", personal.get("health")),
                _extension(codes.LEGAL_DETAILS, "String", personal.get("legal")),
                _extension(codes.DECLINE_NOTE, "String", personal.get("decline_note")),
            )
            if extension is not None
        ]
        resource["reasonCode"] = [{"text": personal["reason"]}] if personal.get("reason") else []
    order = (
        "resourceType", "id", "meta", "contained", "extension", "status", "intent", "category",
        "priority", "subject", "authoredOn", "requester", "performer", "reasonCode",
        "supportingInfo",
    )  # fmt: skip
    return compact({key: resource.get(key) for key in order})


# --- Consent -----------------------------------------------------------------------------------


def consent_status(referral: Referral) -> str:
    return "active" if referral.personal_data == PersonalDataState.PRESENT else "inactive"


def consent(referral: Referral, *, personal: bool = False) -> dict:
    """`personal`: the staff reference and purpose note, decrypted onto referral.consent by the
    gated read. Without them, the summary searches show (codes and dates only)."""
    record = referral.consent
    extensions = [
        _extension(codes.CONSENT_METHOD, "Code", record.method),
        _extension(codes.CONSENT_LANGUAGE, "Code", record.language),
        _extension(codes.WORDING_VERSION, "String", record.wording_version),
    ]
    if personal:
        extensions += [
            _extension(codes.RECORDED_BY, "String", getattr(record, "recorded_by", None)),
            _extension(codes.PURPOSE_NOTE, "String", getattr(record, "purpose_note", None)),
        ]
    performer = (
        {"type": "RelatedPerson", "display": "A representative of the person"}
        if record.by_representative
        else {"type": "Patient", "display": "The person referred"}
    )
    return compact(
        {
            "resourceType": "Consent",
            "id": str(referral.pk),
            "meta": _meta(referral, codes.CONSENT_PROFILE, subsetted=not personal),
            "extension": [extension for extension in extensions if extension is not None],
            "status": consent_status(referral),
            "scope": concept(codes.CONSENT_SCOPE, "patient-privacy", "Privacy Consent"),
            "category": [concept(codes.ACT_CODE, "IDSCL", "information disclosure")],
            "patient": PERSON,
            "dateTime": instant(record.given_at),
            "performer": [performer],
            "organization": [reference("Organization", referral.sender_id)],
            "policyRule": concept(codes.ACT_CODE, "OPTIN", "opt-in"),
            "provision": compact(
                {
                    "type": "permit",
                    "period": compact(
                        {
                            "start": instant(record.given_at),
                            "end": instant(record.revoked_at or record.expires_at),
                        }
                    ),
                    "actor": [
                        {
                            "role": concept(
                                codes.PARTICIPATION_TYPE, "IRCP", "information recipient"
                            ),
                            "reference": reference("Organization", referral.receiver_id),
                        }
                    ],
                    "purpose": [
                        coding(
                            codes.CONSENT_PURPOSE,
                            record.purpose,
                            ConsentPurpose(record.purpose).label,
                        )
                    ],
                    "class": [
                        coding(codes.DATA_CATEGORY, category) for category in record.data_categories
                    ],
                }
            ),
        }
    )


# --- The directory -----------------------------------------------------------------------------


def capacity_extension(capacity) -> dict:
    code, display = codes.CAPACITY_STATUS[capacity.accepting_referrals]
    notes = [f"{capacity.available}" + (f" of {capacity.maximum}" if capacity.maximum else "")]
    notes[0] += f" {capacity.unit} available"
    if capacity.accepting_referrals == "limited":
        notes.append("accepting a limited number of referrals")
    if capacity.estimated_wait_days is not None:
        notes.append(f"estimated wait {capacity.estimated_wait_days} days")
    if capacity.valid_until is not None:
        notes.append(f"figures valid until {instant(capacity.valid_until)}")
    return {
        "url": codes.CAPACITY_EXTENSION,
        "extension": [
            {
                "url": "capacityStatus",
                "valueCodeableConcept": concept(codes.SDOHCC_TEMPORARY_CODES, code, display),
            },
            {"url": "capacityNotes", "valueString": "; ".join(notes) + "."},
        ],
    }


def healthcare_service(service: Service, taxonomy_names: dict[str, str]) -> dict:
    """Without locations: a confidential address must never reach a caller it is hidden from,
    and this directory answer is the same for every partner."""
    capacity = getattr(service, "capacity", None)
    updated = max(filter(None, [service.updated, getattr(capacity, "updated", None)]))
    return compact(
        {
            "resourceType": "HealthcareService",
            "id": str(service.pk),
            "meta": {
                "lastUpdated": instant(updated),
                "profile": [codes.HEALTHCARE_SERVICE_PROFILE],
            },
            "extension": [capacity_extension(capacity)] if capacity is not None else None,
            "active": service.status == ServiceStatus.ACTIVE,
            "providedBy": reference("Organization", service.organisation_id),
            "category": [
                concept(codes.TAXONOMY, code, taxonomy_names.get(code))
                for code in service.taxonomy_codes
            ],
            "name": service.name,
            "comment": service.description or None,
            "communication": [concept(codes.BCP47, language) for language in service.languages],
            "eligibility": [{"comment": service.eligibility_description}]
            if service.eligibility_description
            else None,
            "characteristic": [
                concept(codes.SAFEGUARD, name.replace("_", "-"))
                for name in SAFEGUARDS
                if getattr(service, name)
            ],
            "appointmentRequired": not service.walk_in,
        }
    )


def organization(organisation: Organisation) -> dict:
    telecom = [
        {"system": system, "value": value}
        for system, value in (
            ("email", organisation.email),
            ("phone", organisation.phone),
            ("url", organisation.website),
        )
        if value
    ]
    return compact(
        {
            "resourceType": "Organization",
            "id": str(organisation.pk),
            "meta": {"lastUpdated": instant(organisation.updated)},
            "active": not organisation.suspended,
            "type": [
                concept(
                    codes.ORGANISATION_KIND,
                    organisation.kind,
                    OrganisationKind(organisation.kind).label,
                )
            ],
            "name": organisation.name,
            "telecom": telecom,
        }
    )


# --- Bundles -----------------------------------------------------------------------------------


def searchset(base: str, resources: list[dict], links: dict[str, str | None]) -> dict:
    return compact(
        {
            "resourceType": "Bundle",
            "type": "searchset",
            "link": [{"relation": relation, "url": url} for relation, url in links.items() if url],
            "entry": [
                {
                    "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
                    "resource": resource,
                    "search": {"mode": "match"},
                }
                for resource in resources
            ],
        }
    )
