"""Canonical URLs, code systems and the two-way maps between this network's codes and FHIR's.

The network's own code systems and extensions are named by URNs under `urn:srn:fhir:`: they are
identifiers of this software's code lists, the same for every deployment, and resolve nowhere."""

from partners.models import AcceptingReferrals
from referrals.models import Status, Urgency

FHIR_VERSION = "4.0.1"
JSON = "application/fhir+json"

SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare"
SDOHCC_VERSION = "2.3.0"
# The capacity-status extension appeared in the guide's STU 3 (3.0.0): the only one there is.
SDOHCC_CAPACITY_VERSION = "3.0.0"
TASK_PROFILE = f"{SDOHCC}/StructureDefinition/SDOHCC-TaskForReferralManagement"
SERVICE_REQUEST_PROFILE = f"{SDOHCC}/StructureDefinition/SDOHCC-ServiceRequest"
CONSENT_PROFILE = f"{SDOHCC}/StructureDefinition/SDOHCC-Consent"
HEALTHCARE_SERVICE_PROFILE = (
    f"{SDOHCC}/StructureDefinition/SDOHCC-HealthcareServiceForReferralManagement"
)
CAPACITY_EXTENSION = f"{SDOHCC}/StructureDefinition/SDOHCC-ExtensionHealthcareServiceCapacityStatus"
SDOHCC_TEMPORARY_CODES = f"{SDOHCC}/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
TASK_TOPIC = f"{SDOHCC}/SubscriptionTopic/Task"

BACKPORT = "http://hl7.org/fhir/uv/subscriptions-backport"
BACKPORT_VERSION = "1.1.0"
BACKPORT_SUBSCRIPTION_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription"
BACKPORT_NOTIFICATION_PROFILE = (
    f"{BACKPORT}/StructureDefinition/backport-subscription-notification-r4"
)
BACKPORT_STATUS_PROFILE = f"{BACKPORT}/StructureDefinition/backport-subscription-status-r4"
BACKPORT_FILTER = f"{BACKPORT}/StructureDefinition/backport-filter-criteria"
BACKPORT_CONTENT = f"{BACKPORT}/StructureDefinition/backport-payload-content"
BACKPORT_HEARTBEAT = f"{BACKPORT}/StructureDefinition/backport-heartbeat-period"
BACKPORT_TIMEOUT = f"{BACKPORT}/StructureDefinition/backport-timeout"
BACKPORT_MAX_COUNT = f"{BACKPORT}/StructureDefinition/backport-max-count"
BACKPORT_TOPIC_CANONICAL = (
    f"{BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical"
)
BACKPORT_SERVER = f"{BACKPORT}/CapabilityStatement/backport-subscription-server-r4"

TASK_CODE = "http://hl7.org/fhir/CodeSystem/task-code"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
RESTFUL_SECURITY = "http://terminology.hl7.org/CodeSystem/restful-security-service"
SUBSETTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "SUBSETTED")
BCP47 = "urn:ietf:bcp:47"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
PRONOUNS = "http://hl7.org/fhir/StructureDefinition/individual-pronouns"
INTERPRETER_REQUIRED = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired"

OWN = "urn:srn:fhir:"
TAXONOMY = OWN + "taxonomy"
REFERRAL_STATUS = OWN + "referral-status"
DECLINE_REASON = OWN + "decline-reason"
OUTCOME = OWN + "outcome"
TASK_OUTPUT = OWN + "task-output"
CONSENT_PURPOSE = OWN + "consent-purpose"
DATA_CATEGORY = OWN + "data-category"
AGE_BAND = OWN + "age-band"
ORGANISATION_KIND = OWN + "organisation-kind"
SAFEGUARD = OWN + "safeguard"
CLAIM_CODE = OWN + "claim-code"
PROBLEM = OWN + "problem"
EXTENSION = OWN + "extension:"
SAFE_CONTACT = EXTENSION + "safe-contact"
AGE_BAND_EXTENSION = EXTENSION + "age-band"
HEALTH_DETAILS = EXTENSION + "health-details"
LEGAL_DETAILS = EXTENSION + "legal-details"
DECLINE_NOTE = EXTENSION + "decline-note"
CONSENT_METHOD = EXTENSION + "consent-method"
CONSENT_LANGUAGE = EXTENSION + "consent-language"
WORDING_VERSION = EXTENSION + "wording-version"
RECORDED_BY = EXTENSION + "recorded-by"
PURPOSE_NOTE = EXTENSION + "purpose-note"
SIGNING_SECRET = EXTENSION + "webhook-signing-secret"
WEBHOOK_ENDPOINT = EXTENSION + "webhook-endpoint"

# This API's urgency and FHIR's request priority (routine < urgent < asap < stat).
PRIORITY = {Urgency.ROUTINE: "routine", Urgency.SOON: "urgent", Urgency.URGENT: "asap"}
URGENCY = {priority: urgency for urgency, priority in PRIORITY.items()}

# This API's status -> FHIR Task.status. The guide's referral Task status value set leaves out
# `received`: a received referral is `requested` with the business status `received`.
TASK_STATUS = {
    Status.REQUESTED: "requested",
    Status.RECEIVED: "requested",
    Status.ACCEPTED: "accepted",
    Status.DECLINED: "rejected",
    Status.ON_HOLD: "on-hold",
    Status.IN_PROGRESS: "in-progress",
    Status.COMPLETED: "completed",
    Status.CANCELLED: "cancelled",
    Status.EXPIRED: "failed",
}


def status_from_task(task_status: str, business_status: str | None) -> str | None:
    """The API's status a Task's status and business status stand for, None for none."""
    if task_status == "requested":
        return Status.RECEIVED if business_status == Status.RECEIVED else Status.REQUESTED
    matches = [ours for ours, theirs in TASK_STATUS.items() if theirs == task_status]
    return matches[0] if matches else None


def statuses_for_task_status(task_status: str) -> list[str]:
    """Every API status a Task status search value matches."""
    return [ours for ours, theirs in TASK_STATUS.items() if theirs == task_status]


# The ServiceRequest is the request itself: open while the referral is, then completed, or
# revoked (no further activity will happen on it: cancelled, declined or expired).
SERVICE_REQUEST_STATUS = {
    Status.COMPLETED: "completed",
    Status.CANCELLED: "revoked",
    Status.DECLINED: "revoked",
    Status.EXPIRED: "revoked",
}

# The guide's capacity statuses (STU 3 value set).
CAPACITY_STATUS = {
    AcceptingReferrals.OPEN: ("capacity", "Has Capacity"),
    AcceptingReferrals.LIMITED: ("capacity", "Has Capacity"),
    AcceptingReferrals.WAITLIST: ("waitlist", "No Capacity - Has Waitlist"),
    AcceptingReferrals.ASSESSMENT_REQUIRED: (
        "additional-assessment-required",
        "Additional Assessment Required",
    ),
    AcceptingReferrals.CLOSED: ("no-capacity", "No Capacity"),
}
