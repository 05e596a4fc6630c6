"""PUT and PATCH of a Task or a Consent, read into what changed. A Task may change only its
status, business status, status reason and output: the rest of a referral is fixed once sent,
as in the REST API. A Consent changes only by being withdrawn (status `inactive`).

PATCH takes a JSON Patch (RFC 6902) applied to the resource as this server renders it, so the
same comparison decides for both verbs."""

import copy
from dataclasses import dataclass

from referrals.fhir import codes
from referrals.fhir.errors import Malformed, Refused
from referrals.fhir.structure import structure_errors
from referrals.models import Status

TASK_CHANGEABLE = frozenset({"status", "businessStatus", "statusReason", "output"})
# What the server keeps itself: a client's copy may differ without meaning a change (the claim
# code, Task.identifier, is cleared when the referral closes).
SERVER_KEPT = frozenset({"meta", "text", "lastModified", "identifier"})
PATCH_OPERATIONS = frozenset({"add", "remove", "replace", "test"})


def _tokens(pointer) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise Malformed(
            "A JSON Patch path is a JSON pointer (RFC 6901).",
            errors=[{"expression": "patch", "detail": f"Bad path {pointer!r}."}],
        )
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]


def _parent(document, tokens: list[str], index: int):
    target = document
    for token in tokens[:-1]:
        if isinstance(target, list) and token.isdigit() and int(token) < len(target):
            target = target[int(token)]
        elif isinstance(target, dict) and token in target:
            target = target[token]
        else:
            raise Refused(
                "The patch does not apply to the resource as it is now.",
                errors=[{"expression": f"patch[{index}]", "detail": "No such element."}],
            )
    return target


def json_patch(document: dict, operations, *, allowed: frozenset) -> dict:
    """`document` with `operations` applied. Only `allowed` top-level elements may change;
    `test` may look anywhere. A failed test or a missing element: 422 (FHIR's answer when a
    patch cannot be applied); a malformed patch: 400."""
    if not isinstance(operations, list):
        raise Malformed(
            "PATCH takes a JSON Patch document: a list of operations.",
            errors=[{"expression": "patch", "detail": "Expected a JSON array."}],
        )
    out = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        if not isinstance(operation, dict) or operation.get("op") not in PATCH_OPERATIONS:
            raise Malformed(
                "Each operation is add, remove, replace or test.",
                errors=[{"expression": f"patch[{index}]", "detail": "Unsupported operation."}],
            )
        op = operation["op"]
        tokens = _tokens(operation.get("path"))
        if not tokens:
            raise Refused(
                "A patch cannot replace the whole resource.",
                errors=[{"expression": f"patch[{index}]", "detail": "Empty path."}],
            )
        if op != "test" and tokens[0] not in allowed:
            raise Refused(
                "Only " + ", ".join(sorted(allowed)) + " can change.",
                errors=[{"expression": f"patch[{index}]", "detail": f"/{tokens[0]} is fixed."}],
            )
        if op in ("add", "replace", "test") and "value" not in operation:
            raise Malformed(
                f"`{op}` needs a value.",
                errors=[{"expression": f"patch[{index}]", "detail": "No value."}],
            )
        parent = _parent(out, tokens, index)
        last = tokens[-1]
        if isinstance(parent, list):
            position = len(parent) if last == "-" else int(last) if last.isdigit() else -1
            exists = 0 <= position < len(parent)
        else:
            exists = isinstance(parent, dict) and last in parent
        if op == "test":
            current = parent[position if isinstance(parent, list) else last] if exists else None
            if not exists or current != operation["value"]:
                raise Refused(
                    "A test operation of the patch failed: the resource changed, or differs.",
                    errors=[{"expression": f"patch[{index}]", "detail": "Test failed."}],
                )
        elif op == "remove" or (op == "replace" and not exists):
            if not exists:
                raise Refused(
                    "The patch names an element that is not there.",
                    errors=[{"expression": f"patch[{index}]", "detail": "No such element."}],
                )
            del parent[position if isinstance(parent, list) else last]
        elif isinstance(parent, list):
            if op == "add" and 0 <= position <= len(parent):
                parent.insert(position, operation["value"])
            elif exists:
                parent[position] = operation["value"]
            else:
                raise Refused(
                    "The patch names a list position that is not there.",
                    errors=[{"expression": f"patch[{index}]", "detail": "Bad index."}],
                )
        else:
            parent[last] = operation["value"]
    return out


def _same_resource(desired, current: dict, resource_type: str) -> None:
    if not isinstance(desired, dict) or desired.get("resourceType") != resource_type:
        raise Malformed(
            f"The body must be a {resource_type}.",
            errors=[{"expression": resource_type, "detail": f"Expected a {resource_type}."}],
        )
    errors = structure_errors(desired)
    if errors:
        raise Malformed(f"The {resource_type} is not valid FHIR; see the issues.", errors=errors)
    if desired.get("id") != current["id"]:
        raise Malformed(
            "The resource's id must be the one in the URL.",
            errors=[{"expression": f"{resource_type}.id", "detail": "Does not match the URL."}],
        )


@dataclass(frozen=True)
class TaskChange:
    """The API status the Task asks for, with a decline's reason and note or a completion's
    outcome."""

    status: str
    reason: str = ""
    note: str = ""
    outcome: str = ""


def _first_code(concept, system: str) -> str:
    for one in (concept or {}).get("coding", []):
        if one.get("system") == system and one.get("code"):
            return one["code"]
    return ""


def task_change(desired, current: dict) -> TaskChange | None:
    """What a PUT or patched Task asks for, or None when its status stays as it is."""
    _same_resource(desired, current, "Task")
    changed = sorted(
        name
        for name in (set(desired) | set(current)) - SERVER_KEPT
        if desired.get(name) != current.get(name)
    )
    fixed = [name for name in changed if name not in TASK_CHANGEABLE]
    if fixed:
        raise Refused(
            "Only status, businessStatus, statusReason and output of a Task can change; send "
            "the rest as you read it.",
            errors=[{"expression": f"Task.{name}", "detail": "Cannot change."} for name in fixed],
        )
    business = _first_code(desired.get("businessStatus"), codes.REFERRAL_STATUS)
    target = codes.status_from_task(desired.get("status"), business)
    if target is None:
        raise Refused(
            f"Task status {desired.get('status')!r} is not one a referral can take.",
            errors=[{"expression": "Task.status", "detail": "Not a referral status."}],
        )
    current_status = codes.status_from_task(
        current["status"], _first_code(current.get("businessStatus"), codes.REFERRAL_STATUS)
    )
    if target == current_status:
        if changed:
            raise Refused(
                "statusReason and output change only with the status they belong to.",
                errors=[
                    {"expression": f"Task.{name}", "detail": "Cannot change."} for name in changed
                ],
            )
        return None
    if target == Status.DECLINED:
        reason = desired.get("statusReason") or {}
        code = _first_code(reason, codes.DECLINE_REASON)
        label = next(
            (c.get("display") for c in reason.get("coding", []) if c.get("code") == code), None
        )
        text = reason.get("text") or ""
        return TaskChange(status=target, reason=code, note="" if text == label else text)
    if target == Status.COMPLETED:
        outcomes = [
            _first_code(item.get("valueCodeableConcept"), codes.OUTCOME)
            for item in desired.get("output", [])
            if _first_code(item.get("type"), codes.TASK_OUTPUT) == "outcome"
        ]
        return TaskChange(status=target, outcome=next(iter(outcomes), ""))
    return TaskChange(status=target)


def consent_withdrawn(desired, current: dict) -> bool:
    """True when the Consent asks to be withdrawn (status `inactive`); False when it stays
    active. Only the status is read: a withdrawal must never bounce on another element."""
    _same_resource(desired, current, "Consent")
    status = desired.get("status")
    if status not in ("active", "inactive"):
        raise Refused(
            "A consent is withdrawn by setting its status to inactive; nothing else changes.",
            errors=[{"expression": "Consent.status", "detail": "Use inactive."}],
        )
    return status == "inactive"
