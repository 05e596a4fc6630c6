"""FHIR bodies read into what the services take: a transaction Bundle into the same referral
create input as `POST /api/v1/referrals` (validated afterwards by the REST API's own
serializer, so a length or a language tag is checked in one place), a Task's new status into a
transition, a Consent's into a revocation.

Strict, as the REST API is: an element the network does not store is refused with the reason,
never dropped in silence. Only `id`, `meta`, `text` and `authoredOn` are read past (the server
assigns them; a narrative is not stored). The person's identifier, birth date and address are
refused with why."""

import re
import uuid
from dataclasses import dataclass, field

from referrals.fhir import codes
from referrals.fhir.errors import Malformed, Problems, Refused
from referrals.fhir.resources import SAFE_CONTACT_PARTS
from referrals.fhir.structure import structure_errors

IGNORED = frozenset({"resourceType", "id", "meta", "text"})
PATIENT_REFUSED = {
    "identifier": "The network never stores an identifier from another system: a record, "
    "insurance or document number leads back to the person. Refer them by the pseudonym they "
    "chose (Patient.name with use `anonymous`).",
    "birthDate": "A birth date identifies a person. Send an age band instead (extension "
    f"{codes.AGE_BAND_EXTENSION}).",
    "address": "An address is never stored: it can lead to the person. Say how to reach them "
    f"safely in the safe-contact extension ({codes.SAFE_CONTACT}).",
}
NOT_STORED = (
    "{path} is not accepted: the network stores only what a referral needs (see docs/FHIR.md "
    "for the elements it reads)."
)
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"


def reference_id(value, resource_type: str) -> uuid.UUID | None:
    """The id in `Type/id` or `.../Type/id` (an absolute URL of this server), else None."""
    if not isinstance(value, dict) or not isinstance(value.get("reference"), str):
        return None
    match = re.fullmatch(rf"(?:.*/)?{resource_type}/({UUID})", value["reference"])
    return uuid.UUID(match.group(1)) if match else None


def _codes(concepts, system: str, path: str, problems: Problems) -> list[str]:
    """The codes of `system` in a list of CodeableConcepts (or Codings); any other system is
    refused, since the network could not store it."""
    out = []
    for index, item in enumerate(concepts or []):
        is_concept = "coding" in item or "text" in item
        codings = item.get("coding", []) if is_concept else [item]
        for position, one in enumerate(codings):
            where = f"{path}[{index}].coding[{position}]" if is_concept else f"{path}[{index}]"
            if one.get("system") != system or not one.get("code"):
                problems.refuse(where, f"Only codes of {system} are accepted here.")
            else:
                out.append(one["code"])
    return out


def refuse_unknown(
    resource: dict, allowed: set, path: str, problems: Problems, why: dict | None = None
):
    for name in resource:
        if name in allowed or name in IGNORED:
            continue
        detail = (why or {}).get(name.lstrip("_")) or NOT_STORED.format(path=f"{path}.{name}")
        problems.refuse(f"{path}.{name}", detail)


def _extensions(resource: dict, path: str, allowed: dict, problems: Problems) -> dict:
    """url -> the extension, for the urls in `allowed` (url -> value key, or None for a
    complex extension); any other extension is refused."""
    found = {}
    for index, extension in enumerate(resource.get("extension", [])):
        url = extension.get("url")
        if url not in allowed:
            problems.refuse(
                f"{path}.extension[{index}]",
                f"The extension {url} is not accepted here: the network would not store it.",
            )
            continue
        key = allowed[url]
        found[url] = extension.get(key) if key else extension
    return found


@dataclass
class Referral:
    """A transaction Bundle read: the REST create input, and where each field came from."""

    data: dict = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def put(self, pointer: str, value, expression: str) -> None:
        """Set the REST field at `pointer` (e.g. /consent/method), remembering its FHIR source."""
        if value is None:
            return
        parts = pointer.strip("/").split("/")
        target = self.data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
        self.sources[pointer] = expression

    def expression_for(self, pointer: str) -> str:
        """The FHIR element a REST field error points at: its own source, the nearest of its
        parents, or the first of its children (an error on /contact names the telecom)."""
        children = [
            source for name, source in self.sources.items() if name.startswith(pointer + "/")
        ]
        while pointer:
            if pointer in self.sources:
                return self.sources[pointer]
            if children:
                return children[0]
            pointer = pointer.rpartition("/")[0]
        return "Bundle"


ENTRY_TYPES = ("ServiceRequest", "Task", "Consent")


def transaction(body, *, caller_id: uuid.UUID) -> Referral:
    """Read a transaction Bundle of one ServiceRequest, one Task and one Consent (the person
    contained in the ServiceRequest) into the REST create input."""
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise Malformed(
            "POST to the base takes a transaction Bundle.",
            errors=[{"expression": "Bundle", "detail": "Expected a Bundle resource."}],
        )
    errors = structure_errors(body)
    if errors:
        raise Malformed("The Bundle is not valid FHIR; see the issues.", errors=errors)
    if body.get("type") != "transaction":
        raise Refused(
            "Only transaction Bundles are processed here.",
            errors=[{"expression": "Bundle.type", "detail": "Must be `transaction`."}],
        )
    problems = Problems()
    found: dict[str, tuple[int, dict]] = {}
    full_urls: dict[str, str] = {}
    for index, entry in enumerate(body.get("entry", [])):
        path = f"Bundle.entry[{index}]"
        resource = entry.get("resource") or {}
        resource_type = resource.get("resourceType")
        request = entry.get("request") or {}
        if resource_type == "Patient":
            problems.refuse(
                f"{path}.resource",
                "The network keeps no Patient resource: the person is a pseudonymous Patient "
                "contained in the ServiceRequest (ServiceRequest.contained, referenced from "
                "ServiceRequest.subject as #id).",
            )
            continue
        if resource_type not in ENTRY_TYPES or resource_type in found:
            problems.refuse(
                f"{path}.resource",
                "A referral is one ServiceRequest, one Task and one Consent; this entry is not "
                "one of them.",
            )
            continue
        if request.get("method") != "POST" or request.get("url") != resource_type:
            problems.bad(f"{path}.request", f"Create it: method POST, url {resource_type}.")
        for name in ("ifMatch", "ifModifiedSince", "ifNoneMatch"):
            if name in request:
                problems.refuse(f"{path}.request.{name}", "Not used when creating a referral.")
        found[resource_type] = (index, resource)
        if entry.get("fullUrl"):
            full_urls[entry["fullUrl"]] = resource_type
    missing = [name for name in ENTRY_TYPES if name not in found]
    if missing:
        problems.refuse("Bundle.entry", "The transaction lacks: " + ", ".join(missing) + ".")
    problems.raise_any()
    referral = Referral(order=sorted(found, key=lambda name: found[name][0]))
    _service_request(referral, *found["ServiceRequest"], problems, caller_id, full_urls)
    _task(referral, *found["Task"], problems, caller_id, full_urls)
    _consent(referral, *found["Consent"], problems, caller_id)
    problems.raise_any()
    return referral


def _local(value, full_urls: dict, resource_type: str) -> bool:
    """A reference to the bundle's own entry of that type (by its fullUrl)."""
    return isinstance(value, dict) and full_urls.get(value.get("reference")) == resource_type


def _caller(resource: dict, element: str, path: str, caller_id, problems: Problems) -> None:
    """The requesting organisation is the caller's own, from the token: never another's."""
    if element in resource and reference_id(resource[element], "Organization") != caller_id:
        problems.refuse(
            f"{path}.{element}",
            "Must be your own organisation (Organization/<your id>), or left out.",
        )


def _priority(referral: Referral, resource: dict, path: str, problems: Problems) -> None:
    value = resource.get("priority")
    if value is None:
        return
    urgency = codes.URGENCY.get(value)
    if urgency is None:
        problems.refuse(f"{path}.priority", "Use routine, urgent or asap.")
        return
    if referral.data.get("urgency") not in (None, urgency):
        problems.refuse(f"{path}.priority", "ServiceRequest and Task must agree on priority.")
        return
    referral.put("/urgency", urgency, f"{path}.priority")


def _service_request(referral, index, resource, problems, caller_id, full_urls) -> None:
    path = f"Bundle.entry[{index}].resource"
    refuse_unknown(
        resource,
        {
            "contained", "extension", "status", "intent", "category", "priority", "subject",
            "requester", "performer", "reasonCode", "supportingInfo", "authoredOn",
        },
        path,
        problems,
    )  # fmt: skip
    if resource.get("status") != "active" or resource.get("intent") != "order":
        problems.refuse(f"{path}.status", "A new referral is status `active`, intent `order`.")
    _caller(resource, "requester", path, caller_id, problems)
    performers = resource.get("performer", [])
    service = reference_id(performers[0], "HealthcareService") if len(performers) == 1 else None
    if service is None:
        problems.bad(
            f"{path}.performer",
            "Name exactly one performer: the receiving service, HealthcareService/<id>.",
        )
    referral.put("/service", str(service) if service else None, f"{path}.performer[0]")
    _priority(referral, resource, path, problems)
    needs = _codes(resource.get("category"), codes.TAXONOMY, f"{path}.category", problems)
    referral.put("/needs", needs, f"{path}.category")
    reasons = resource.get("reasonCode", [])
    if len(reasons) != 1 or set(reasons[0]) != {"text"}:
        problems.bad(f"{path}.reasonCode", "Give the reason as one reasonCode with text only.")
    else:
        referral.put("/reason", reasons[0]["text"], f"{path}.reasonCode[0].text")
    for position, info in enumerate(resource.get("supportingInfo", [])):
        if not _local(info, full_urls, "Consent"):
            problems.refuse(
                f"{path}.supportingInfo[{position}]",
                "Only the Consent of this transaction (by its fullUrl) may be referenced.",
            )
    found = _extensions(
        resource,
        path,
        {codes.HEALTH_DETAILS: "valueString", codes.LEGAL_DETAILS: "valueString"},
        problems,
    )
    referral.put("/health", found.get(codes.HEALTH_DETAILS), f"{path}.extension")
    referral.put("/legal", found.get(codes.LEGAL_DETAILS), f"{path}.extension")
    contained = resource.get("contained", [])
    subject = (resource.get("subject") or {}).get("reference", "")
    if len(contained) != 1 or not subject.startswith("#") or contained[0].get("id") != subject[1:]:
        problems.bad(
            f"{path}.subject",
            "The person is one Patient contained in the ServiceRequest and referenced from "
            "subject as #<its id>.",
        )
        return
    _patient(referral, contained[0], f"{path}.contained[0]", problems)


def _patient(referral: Referral, resource: dict, path: str, problems: Problems) -> None:
    if resource.get("resourceType") != "Patient":
        problems.bad(path, "The contained resource must be a Patient.")
        return
    refuse_unknown(
        resource, {"extension", "name", "telecom", "communication"}, path, problems, PATIENT_REFUSED
    )
    names = resource.get("name", [])
    name = names[0] if len(names) == 1 else {}
    chosen = name.get("text") or " ".join(name.get("given", []))
    if not chosen or name.get("family") or name.get("prefix") or name.get("suffix"):
        problems.refuse(
            f"{path}.name",
            "One name: the pseudonym or first name the person chose (text or given), with no "
            "family name, prefix or suffix.",
        )
    referral.put("/person/name", chosen or None, f"{path}.name[0]")
    found = _extensions(
        resource,
        path,
        {
            codes.SAFE_CONTACT: None,
            codes.PRONOUNS: None,
            codes.AGE_BAND_EXTENSION: "valueCodeableConcept",
            codes.INTERPRETER_REQUIRED: "valueBoolean",
        },
        problems,
    )
    pronouns = found.get(codes.PRONOUNS)
    if pronouns is not None:
        parts = {part.get("url"): part for part in pronouns.get("extension", [])}
        text = (parts.get("value", {}).get("valueCodeableConcept") or {}).get("text")
        referral.put("/person/pronouns", text, f"{path}.extension")
    age_band = found.get(codes.AGE_BAND_EXTENSION)
    if age_band is not None:
        bands = _codes([age_band], codes.AGE_BAND, f"{path}.extension", problems)
        referral.put("/person/age_band", bands[0] if bands else None, f"{path}.extension")
    referral.put("/person/interpreter_needed", found.get(codes.INTERPRETER_REQUIRED), path)
    languages = []
    for index, item in enumerate(resource.get("communication", [])):
        languages += _codes(
            [item.get("language", {})],
            codes.BCP47,
            f"{path}.communication[{index}].language",
            problems,
        )
    if languages:
        referral.put("/person/languages", languages, f"{path}.communication")
    _telecom(referral, resource.get("telecom", []), path, problems)
    safe = found.get(codes.SAFE_CONTACT)
    if safe is None:
        problems.bad(
            f"{path}.extension",
            f"The safe-contact extension ({codes.SAFE_CONTACT}) is required: how, when and by "
            "what name the person may be reached, or do-not-contact.",
        )
        return
    _safe_contact(referral, safe, f"{path}.extension", problems)


def _telecom(referral: Referral, telecom: list, path: str, problems: Problems) -> None:
    systems = {"phone": "phone", "email": "email", "other": "handle"}
    for index, point in enumerate(telecom):
        name = systems.get(point.get("system"))
        if (
            name is None
            or set(point) - {"system", "value"}
            or name in referral.data.get("contact", {})
        ):
            problems.refuse(
                f"{path}.telecom[{index}]",
                "At most one phone, one email and one other (a Signal or similar handle), each "
                "with system and value only.",
            )
            continue
        referral.put(f"/contact/{name}", point.get("value"), f"{path}.telecom[{index}]")


def _safe_contact(referral: Referral, extension: dict, path: str, problems: Problems) -> None:
    parts = {url: (name, value_type) for url, name, value_type in SAFE_CONTACT_PARTS}
    safe: dict = {}
    for index, part in enumerate(extension.get("extension", [])):
        known = parts.get(part.get("url"))
        if known is None or f"value{known[1]}" not in part:
            problems.refuse(
                f"{path}.extension[{index}]",
                "Not a part of the safe-contact extension: " + ", ".join(parts) + ".",
            )
            continue
        name, value_type = known
        value = part[f"value{value_type}"]
        if name == "channels":
            safe.setdefault("channels", []).append(value)
        else:
            safe[name] = value
    referral.put("/safe_contact", safe, path)


def _task(referral, index, resource, problems, caller_id, full_urls) -> None:
    path = f"Bundle.entry[{index}].resource"
    refuse_unknown(
        resource,
        {"status", "intent", "code", "focus", "for", "priority", "requester", "owner",
         "restriction", "authoredOn"},
        path,
        problems,
    )  # fmt: skip
    if resource.get("status") != "requested" or resource.get("intent") != "order":
        problems.refuse(f"{path}.status", "A new referral's Task is `requested`, intent `order`.")
    task_codes = [c.get("code") for c in (resource.get("code") or {}).get("coding", [])]
    if "code" in resource and task_codes != ["fulfill"]:
        problems.refuse(f"{path}.code", f"The Task code is {codes.TASK_CODE}#fulfill.")
    if not _local(resource.get("focus"), full_urls, "ServiceRequest"):
        problems.bad(f"{path}.focus", "focus is the ServiceRequest of this transaction (fullUrl).")
    if "reference" in (resource.get("for") or {}):
        problems.refuse(
            f"{path}.for",
            "The person is contained in the ServiceRequest; Task.for can only name their type "
            "(Patient), not point at a record.",
        )
    _caller(resource, "requester", path, caller_id, problems)
    owner = reference_id(resource.get("owner"), "Organization")
    if owner is None:
        problems.bad(f"{path}.owner", "owner is the receiving organisation: Organization/<id>.")
    referral.put("/receiver", str(owner) if owner else None, f"{path}.owner")
    _priority(referral, resource, path, problems)
    restriction = resource.get("restriction") or {}
    if set(restriction) - {"period"} or set(restriction.get("period", {})) - {"end"}:
        problems.refuse(f"{path}.restriction", "Only restriction.period.end (respond by) is read.")
    end = restriction.get("period", {}).get("end")
    referral.put("/respond_by", end, f"{path}.restriction.period.end")


CONSENT_EXTENSIONS = {
    codes.CONSENT_METHOD: ("method", "valueCode"),
    codes.CONSENT_LANGUAGE: ("language", "valueCode"),
    codes.WORDING_VERSION: ("wording_version", "valueString"),
    codes.RECORDED_BY: ("recorded_by", "valueString"),
    codes.PURPOSE_NOTE: ("purpose_note", "valueString"),
}


def _consent(referral, index, resource, problems, caller_id) -> None:
    path = f"Bundle.entry[{index}].resource"
    refuse_unknown(
        resource,
        {"extension", "status", "scope", "category", "patient", "dateTime", "performer",
         "organization", "policyRule", "provision"},
        path,
        problems,
    )  # fmt: skip
    if resource.get("status") != "active":
        problems.refuse(f"{path}.status", "A new referral's consent is `active`.")
    found = _extensions(
        resource, path, {url: key for url, (_, key) in CONSENT_EXTENSIONS.items()}, problems
    )
    for url, (name, _) in CONSENT_EXTENSIONS.items():
        referral.put(f"/consent/{name}", found.get(url), f"{path}.extension")
    referral.put("/consent/given_at", resource.get("dateTime"), f"{path}.dateTime")
    if "reference" in (resource.get("patient") or {}):
        problems.refuse(
            f"{path}.patient",
            "The person is contained in the ServiceRequest; Consent.patient can only name their "
            "type (Patient), not point at a record.",
        )
    for position, organisation in enumerate(resource.get("organization", [])):
        if reference_id(organisation, "Organization") != caller_id:
            problems.refuse(
                f"{path}.organization[{position}]",
                "The consent is recorded by your own organisation only.",
            )
    performers = resource.get("performer", [])
    kind = performers[0].get("type") if len(performers) == 1 else None
    if kind not in ("Patient", "RelatedPerson") or "reference" in performers[0]:
        problems.bad(
            f"{path}.performer",
            "One performer naming who agreed by type only: Patient (the person) or "
            "RelatedPerson (a representative).",
        )
    referral.put("/consent/by_representative", kind == "RelatedPerson", f"{path}.performer")
    provision = resource.get("provision") or {}
    where = f"{path}.provision"
    refuse_unknown(provision, {"type", "period", "actor", "purpose", "class"}, where, problems)
    referral.put("/consent/consented", provision.get("type") == "permit", f"{where}.type")
    period = provision.get("period") or {}
    referral.put("/consent/expires_at", period.get("end"), f"{where}.period.end")
    recipients = [
        reference_id(actor.get("reference"), "Organization")
        for actor in provision.get("actor", [])
        if "IRCP" in [c.get("code") for c in (actor.get("role") or {}).get("coding", [])]
    ]
    if len(recipients) != 1 or recipients[0] is None:
        problems.bad(
            f"{where}.actor",
            "Name the one recipient: an actor with role IRCP and Organization/<id>.",
        )
    else:
        referral.put("/consent/recipient", str(recipients[0]), f"{where}.actor")
    purposes = _codes(provision.get("purpose"), codes.CONSENT_PURPOSE, f"{where}.purpose", problems)
    if len(purposes) != 1:
        problems.bad(f"{where}.purpose", f"Give one purpose, a code of {codes.CONSENT_PURPOSE}.")
    referral.put("/consent/purpose", purposes[0] if purposes else None, f"{where}.purpose")
    categories = _codes(provision.get("class"), codes.DATA_CATEGORY, f"{where}.class", problems)
    referral.put("/consent/data_categories", categories, f"{where}.class")
