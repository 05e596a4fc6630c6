"""The problem catalogue: every `type` a problem document can carry, one per failure, with its
status, what it means, what to do, and its extension members. `api.errors` builds documents
only from codes listed here, `/problems/<code>` serves each entry as a page (a type URI
resolves), and `api.schema` publishes each entry as a schema component."""

from dataclasses import dataclass, field

from django.utils.html import format_html, format_html_join

BASE = "/problems/"

STRINGS = {"type": "array", "items": {"type": "string"}}
ETAG = {"type": "string", "description": "The resource's current ETag, to send as If-Match."}
STATUS_NOW = {"type": "string", "description": "The referral's status now."}
# A 410 for a referral whose personal data is destroyed: what is left to read of it.
PERSONAL_DATA_DESTROYED = {
    "referral_status": {"type": "string", "description": "The referral's status."},
    "etag": ETAG,
}
ALLOWED_ACTIONS = {
    **STRINGS,
    "description": "The actions your organisation may take on the referral now.",
}
RULE = {"type": "string", "description": "The business rule that refused the request."}
ERRORS = {
    "type": "array",
    "description": "One entry per field concerned.",
    "items": {
        "type": "object",
        "properties": {
            "pointer": {
                "type": "string",
                "description": "JSON pointer to the field (`/If-Match` for a header).",
            },
            "detail": {"type": "string", "description": "What is wrong with it."},
        },
        "required": ["pointer", "detail"],
    },
}


@dataclass(frozen=True)
class ProblemType:
    code: str
    status: int
    title: str
    means: str
    fix: str
    extensions: dict = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return BASE + self.code


CATALOGUE: dict[str, ProblemType] = {}


def _add(code, status, title, means, fix, **extensions) -> None:
    CATALOGUE[code] = ProblemType(code, status, title, means, fix, extensions)


_add(
    "bad-request",
    400,
    "Bad request",
    "The request could not be read: a NUL character or bad encoding in the path or query "
    "string, or a malformed request line.",
    "Send UTF-8, percent-encoded, without NUL characters.",
)
_add(
    "validation-error",
    400,
    "Invalid fields",
    "The request does not match the operation's schema: a field is missing, of the wrong type, "
    "too long, out of range, unknown, or a query parameter or cursor is invalid.",
    "Read `errors`: each names a field by JSON pointer and says what is wrong. The OpenAPI "
    "document states every such rule.",
    errors=ERRORS,
)
_add(
    "malformed-json",
    400,
    "Malformed JSON",
    "The body is not valid JSON, or is nested too deeply.",
    "Send one JSON document, at most 32 levels deep.",
)
_add(
    "malformed-if-match",
    400,
    "Malformed If-Match",
    'If-Match is not `*` or a list of quoted entity tags (`"3"`, RFC 9110 §8.8.3): an unquoted '
    "`2` names no ETag.",
    "Send back the ETag header exactly as you received it, quotes included.",
)
_add(
    "not-authenticated",
    401,
    "Not authenticated",
    "The request carries no bearer token.",
    "Get a token from the token endpoint (client credentials grant) and send it as "
    "`Authorization: Bearer <token>`.",
)
_add(
    "invalid-request",
    401,
    "Invalid authorization header",
    "The Authorization header is not `Bearer <token>` (RFC 6750 §3.1 `invalid_request`).",
    "Send the token in the Authorization header with the Bearer scheme, and nowhere else.",
)
_add(
    "invalid-token",
    401,
    "Invalid token",
    "The bearer token is unknown, expired or revoked, or its organisation is suspended.",
    "Get a new token from the token endpoint; tokens last 15 minutes.",
)
_add(
    "insufficient-scope",
    403,
    "Insufficient scope",
    "The token lacks a scope the operation needs.",
    "Ask for the scopes in `missing_scopes` in the token request; your application must have "
    "been granted them.",
    missing_scopes={
        **STRINGS,
        "description": "The scopes the operation needs and the token lacks.",
    },
)
_add(
    "forbidden",
    403,
    "Forbidden",
    "Django itself refused the request: a page of the admin without a valid session, or a form "
    "without its CSRF token. The API's operations never send it: a token without the scope an "
    "operation needs gets `insufficient-scope`, and a business rule never answers 403.",
    "Sign in to the admin again, or reload the form.",
)
_add(
    "not-found",
    404,
    "Not found",
    "No such object, or one your organisation may not see (the two look the same), or no route "
    "at this URL.",
    "Check the id. A path that differs from a route only by its trailing slash names the route "
    "in `route`: no route ends in a slash.",
    route={"type": "string", "description": "The route this path misses by its trailing slash."},
)
_add(
    "method-not-allowed",
    405,
    "Method not allowed",
    "The route does not take this HTTP method.",
    "See the Allow header.",
)
_add(
    "not-acceptable",
    406,
    "Not acceptable",
    "The Accept header names no media type this route can answer with.",
    "Accept application/json (and application/problem+json for errors).",
)
_add(
    "conflict",
    409,
    "Conflict",
    "The request conflicts with the object's current state: a duplicate, an object already in "
    "the state asked for, or a disabled webhook endpoint.",
    "Read the object again and act on its current state.",
    disabled_reason={
        "type": "string",
        "description": "Why the webhook endpoint was disabled, when that is the conflict.",
    },
)
_add(
    "wrong-party",
    409,
    "Wrong party",
    "The action is the other organisation's to take: the receiving side acting for the sender "
    "or the other way round (a receiver cancelling a referral or renewing its consent, a sender "
    "accepting it), a partnership step only the other party may take, or a change to another "
    "organisation's service. A 409, not a 403: the token may well hold every scope the "
    "operation needs; what refuses the request is your organisation's part in an object it can "
    "see, which is that object's state. (An object your organisation may not see at all is a "
    "404, the same as an unknown id.)",
    "Leave the action to the organisation whose part it is; `allowed_actions` lists what yours "
    "may do now, where a referral is concerned, and `errors` names the services that are not "
    "yours.",
    allowed_actions=ALLOWED_ACTIONS,
    errors=ERRORS,
)
_add(
    "partnership-suspended",
    409,
    "Partnership suspended",
    "The partnership between the two organisations is suspended, so the receiver may not read "
    "or act on the referral's personal data. A 409: the request is sound and the token may hold "
    "every scope; the partnership's current state refuses it, and resuming the partnership "
    "lets the same request through.",
    "Resume the partnership (only the organisation that suspended it may) and retry.",
    partnership={"type": "string", "format": "uuid", "description": "The partnership's id."},
)
_add(
    "not-consented",
    409,
    "Not consented",
    "The person did not consent to share this category of data with the receiver. A 409, not "
    "a 422: nothing in the request is wrong (a read of the notes has no body at all); the "
    "referral's consent, part of the referral's state, refuses it, so the same request is "
    "accepted on a referral whose consent names the category.",
    "Only the categories in the referral's consent can be read or written; `categories` lists "
    "the ones concerned.",
    categories={**STRINGS, "description": "The data categories concerned."},
)
_add(
    "illegal-transition",
    409,
    "Illegal transition",
    "The referral's status does not allow this action.",
    "`status_now` is the referral's status and `allowed_actions` what your organisation may do "
    "from it.",
    status_now=STATUS_NOW,
    allowed_actions=ALLOWED_ACTIONS,
)
_add(
    "referral-closed",
    409,
    "Referral closed",
    "The referral is completed, declined, cancelled or expired: nothing about it can change.",
    "Make a new referral if the person still needs one.",
    status_now=STATUS_NOW,
)
_add(
    "gone",
    410,
    "Gone",
    "The object existed and no longer does (an import's uploaded file after its job ended).",
    "Nothing to retry.",
)
_add(
    "consent-revoked",
    410,
    "Consent revoked",
    "Consent was revoked (by either organisation or the person): the referral's personal data "
    "is destroyed.",
    "Nothing to retry; the referral's metadata and timeline stay readable.",
    **PERSONAL_DATA_DESTROYED,
)
_add(
    "consent-expired",
    410,
    "Consent expired",
    "The consent's period ended: the referral's personal data is destroyed.",
    "The sender may renew consent before it expires; after, nothing to retry.",
    **PERSONAL_DATA_DESTROYED,
    consent_expired_at={
        "type": "string",
        "format": "date-time",
        "description": "When the consent expired.",
    },
)
_add(
    "retention-ended",
    410,
    "Retention ended",
    "The referral was closed longer ago than the retention period: its personal data is destroyed.",
    "Nothing to retry.",
    **PERSONAL_DATA_DESTROYED,
)
_add(
    "precondition-failed",
    412,
    "Precondition failed",
    "If-Match names an ETag that is no longer current: the object changed since you read it.",
    "Read it again (or use `etag`, and `status_now` for a referral) and retry with the new ETag.",
    etag=ETAG,
    status_now=STATUS_NOW,
)
_add(
    "payload-too-large",
    413,
    "Payload too large",
    "The body or upload is larger than the operation accepts.",
    "Send less per request: split a bulk update, or compress an import.",
)
_add(
    "uri-too-long",
    414,
    "URI too long",
    "The request line (method, path and query string) is longer than the server reads "
    "(8190 bytes).",
    "Send fewer or shorter query parameters; search services with POST /services/search, which "
    "takes its filters as a body.",
)
_add(
    "unsupported-media-type",
    415,
    "Unsupported media type",
    "The Content-Type is not one the operation reads.",
    "Send application/json, or what the operation documents (multipart for an import, "
    "application/x-www-form-urlencoded for the token endpoint).",
)
_add(
    "unprocessable",
    422,
    "Unprocessable content",
    "The request matches the schema but a business rule refuses it: an id that names nothing "
    "your organisation may use, a taxonomy code not in the taxonomy, a webhook address that "
    "resolves to a private network, or values that contradict each other.",
    "Read `errors` (by JSON pointer) and `detail`.",
    errors=ERRORS,
)
_add(
    "partnership-required",
    422,
    "Partnership required",
    "Referrals flow only inside an active partnership between the two organisations.",
    "Propose a partnership (or resume it) and have the partner accept it.",
    rule=RULE,
    partnership_status={"type": "string", "description": "The partnership's status, if any."},
)
_add(
    "category-not-allowed",
    422,
    "Category not allowed",
    "The consent names data categories the partnership does not allow.",
    "Consent only to the partnership's `data_categories`, or agree a partnership that allows them.",
    rule=RULE,
    categories={**STRINGS, "description": "The categories the partnership does not allow."},
    errors=ERRORS,
)
_add(
    "idempotency-key-reused",
    422,
    "Idempotency key reused",
    "This Idempotency-Key was used before with a different request.",
    "Use a new key for a new request; resend the same request to get the first answer again.",
)
_add(
    "precondition-required",
    428,
    "Precondition required",
    "The operation changes an object two people may edit at once, so it needs If-Match.",
    "Send If-Match with the ETag from your last read (`etag` is the current one).",
    etag=ETAG,
)
_add(
    "throttled",
    429,
    "Too many requests",
    "Your application spent its request budget for the window.",
    "Wait for Retry-After seconds; the RateLimit headers show the budget.",
)
_add(
    "self-service-refused",
    422,
    "Code or PIN not accepted",
    "The claim code and PIN open nothing: the code is unknown, the PIN wrong, or the code no "
    "longer in use. The reasons are not told apart.",
    "Check the slip; after five failures the code is locked for a while.",
)
_add(
    "self-service-throttled",
    429,
    "Too many tries",
    "Too many sign-in tries from this address or for this code, or the code is locked.",
    "Wait for Retry-After seconds.",
)
_add(
    "oauth-error",
    400,
    "OAuth error",
    "The token, revocation or introspection endpoint refused the request (RFC 6749 §5.2). "
    "The status is 400, 401 for a client that failed to authenticate, or 429 once a client id "
    "has spent its budget.",
    "`error` is the OAuth error code and `error_description` says what to change.",
    error={"type": "string", "description": "The OAuth error code (RFC 6749 §5.2)."},
    error_description={"type": "string", "description": "What is wrong, in words."},
)
_add(
    "fhir-invalid",
    400,
    "Not valid FHIR",
    "The resource is not valid FHIR R4, or not the shape the facade reads (an OperationOutcome "
    "on the FHIR routes).",
    "Read the OperationOutcome's issues.",
)
_add(
    "fhir-refused",
    422,
    "Refused by a business rule",
    "Valid FHIR that the network will not take (an OperationOutcome on the FHIR routes).",
    "Read the OperationOutcome's issues.",
)
_add(
    "internal-server-error",
    500,
    "Internal server error",
    "An unexpected error; it was logged with the request id.",
    "Retry later, and quote the X-Request-ID header when reporting it.",
)
_add(
    "database-unavailable",
    503,
    "Service unavailable",
    "The database cannot be reached.",
    "Retry after Retry-After seconds.",
)
_add(
    "not-ready",
    503,
    "Not ready",
    "A dependency of the service is not ready (the readiness check).",
    "Retry later.",
)

# The code DRF or Django gives a failure, when it is not one of ours.
ALIASES = {
    "parse-error": "malformed-json",
    "authentication-failed": "invalid-token",
    "permission-denied": "forbidden",
    "too-many-requests": "throttled",
    "precondition-required": "precondition-required",
    "service-unavailable": "database-unavailable",
}
# A failure with no code of its own, by status.
BY_STATUS = {
    400: "bad-request",
    401: "not-authenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    406: "not-acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition-failed",
    413: "payload-too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    422: "unprocessable",
    428: "precondition-required",
    429: "throttled",
    500: "internal-server-error",
    503: "database-unavailable",
}


def lookup(code: str | None, status: int) -> ProblemType:
    """The catalogue's entry for a failure: its own code, DRF's name for it, or its status's."""
    if code:
        code = ALIASES.get(code, code)
        if code in CATALOGUE:
            return CATALOGUE[code]
    return CATALOGUE[
        BY_STATUS.get(status, "internal-server-error" if status >= 500 else "bad-request")
    ]


def _schema_text(schema: dict) -> str:
    kind = schema.get("type", "object")
    if kind == "array":
        kind = f"array of {schema['items'].get('type', 'object')}"
    return kind


def _wants_json(request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def page(request, code: str):
    """What a problem type means and what to do about it: its `type` URI resolves here. HTML
    for a person; JSON (status, title, meaning, fix, extension members) for `Accept:
    application/json`."""
    from django.http import JsonResponse

    from api.errors import problem

    entry = CATALOGUE.get(code)
    if entry is None:
        return problem(
            404, f"No problem type {code!r}; see {BASE.rstrip('/')}.", instance=request.path
        )
    if _wants_json(request):
        return JsonResponse(
            {
                "type": entry.uri,
                "status": entry.status,
                "title": entry.title,
                "means": entry.means,
                "fix": entry.fix,
                "extensions": entry.extensions,
            }
        )
    members = format_html_join(
        "",
        "<li><code>{}</code> ({}): {}</li>",
        (
            (name, _schema_text(schema), schema.get("description", ""))
            for name, schema in entry.extensions.items()
        ),
    )
    return _html(
        entry.title,
        format_html(
            "<p><code>{}</code> · HTTP {}</p><h2>What it means</h2><p>{}</p>"
            "<h2>What to do</h2><p>{}</p>{}",
            entry.uri,
            entry.status,
            entry.means,
            entry.fix,
            format_html("<h2>Extension members</h2><ul>{}</ul>", members) if members else "",
        ),
    )


def index(request):
    """Every problem type, linked to its page."""
    from django.http import JsonResponse

    if _wants_json(request):
        return JsonResponse(
            {
                "results": [
                    {"type": e.uri, "status": e.status, "title": e.title}
                    for e in CATALOGUE.values()
                ]
            }
        )
    rows = format_html_join(
        "",
        '<li><a href="{}">{}</a> · HTTP {} · {}</li>',
        ((entry.uri, entry.code, entry.status, entry.title) for entry in CATALOGUE.values()),
    )
    return _html("Problem types", format_html("<ul>{}</ul>", rows))


def _html(title: str, body):
    from django.http import HttpResponse

    return HttpResponse(
        format_html(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{}</title></head>'
            '<body><h1>{}</h1>{}<p><a href="{}">All problem types</a></p></body></html>',
            title,
            title,
            body,
            BASE.rstrip("/"),
        ),
        content_type="text/html; charset=utf-8",
    )
