"""`Idempotency-Key` for POSTs that create things (draft-ietf-httpapi-idempotency-key-header).

The key row is inserted in the same transaction as the change it guards, before the change:

- a retry with the same key and the same body finds the committed row and gets the original
  response back (status, body, `Location`/`ETag`), with `Idempotent-Replayed: true`;
- the same key with a different body is 422: the client reused a key by mistake;
- a concurrent duplicate blocks on the row's unique index until the first transaction ends,
  then replays its answer (or, if the first one failed and rolled back, runs itself);
- a request that fails (problem, 429, 503, a crash) rolls its key row back with everything else,
  so errors are never replayed and the retry really runs.

Keys are per OAuth application and kept at least `RETENTION` (the retention job in
api/retention.py deletes older ones), or until what the request created is destroyed
(`idempotency_forget`).
The stored response is kept in plain text, so views using this must not answer with personal
data (the referral create returns metadata only). The request is kept only as a keyed
fingerprint: a plain hash of a body full of personal data would confirm a guessed body to
anyone holding the database.
"""

import functools
import hashlib
import json
import re
import uuid
from datetime import timedelta

from django.db import connection, transaction
from django.utils.crypto import salted_hmac
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from api.errors import Conflict, InvalidInput, Unprocessable
from api.models import IdempotencyKey

HEADER = "Idempotency-Key"
RETENTION = timedelta(hours=24)
REPLAYED_HEADERS = ("Location", "ETag")
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
# Domain separation: the HMAC key is derived from SECRET_KEY under this name, so it is used for
# nothing else. Changing it (or SECRET_KEY) only turns replays within 24 hours into 422s.
FINGERPRINT_SALT = "srn.api.idempotency.fingerprint"

_CLAIM = """
INSERT INTO api_idempotencykey
    (application_id, key, request_fingerprint, response_status, response_body,
     response_headers, created)
VALUES (%s, %s, %s, NULL, NULL, '{}'::jsonb, now())
ON CONFLICT (application_id, key) DO NOTHING
RETURNING id
"""


# Keep the answer for replays (in the claim's transaction, so both commit or neither does).
_ANSWER = """
UPDATE api_idempotencykey
SET response_status = %s, response_body = %s::jsonb, response_headers = %s::jsonb,
    object_id = %s
WHERE id = %s
"""


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency-key-reused"


def fingerprint(request) -> str:
    """HMAC-SHA-256, under a key derived from SECRET_KEY, of the SHA-256 of method, path and the
    parsed body in canonical form (so whitespace or key order differences in a retried body do
    not count as a different request). The inner digest is what rows stored before the HMAC
    held, so the migration that keyed them could convert them in place."""
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(f"{request.method} {request.path}\n{canonical}".encode()).hexdigest()
    return salted_hmac(FINGERPRINT_SALT, digest, algorithm="sha256").hexdigest()


def idempotency_forget(*, object_id: uuid.UUID) -> None:
    """Delete the keys whose request created `object_id`, when its personal data is destroyed:
    their fingerprint was taken over that data, their stored answer holds its claim code."""
    IdempotencyKey.objects.filter(object_id=object_id).delete()


def _replay(row: IdempotencyKey, request_fingerprint: str) -> Response:
    if row.request_fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request body. Use a new "
            "key for a new request."
        )
    if row.response_status is None:
        # Only reachable if a row was left unfinished outside this module's transaction.
        raise Conflict("A request with this Idempotency-Key is still being processed.")
    response = Response(row.response_body, status=row.response_status)
    for name, value in row.response_headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(handler):
    """Decorate an APIView's `post`. Without the header the request runs as usual.

    A view whose protocol names its own key (FHIR's If-None-Exist) supplies it with an
    `idempotency_key(request)` method; an answer whose body's `id` is not what it created sets
    `response.created_id`, so the key goes when that is destroyed."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        key_of = getattr(view, "idempotency_key", None)
        key = key_of(request) if key_of is not None else request.headers.get(HEADER)
        if key is None:
            return handler(view, request, *args, **kwargs)
        if not KEY_PATTERN.match(key):
            raise InvalidInput(
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
                errors=[{"pointer": "/headers/Idempotency-Key", "detail": "Invalid key."}],
            )
        application = request.application
        request_fingerprint = fingerprint(request)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(_CLAIM, [application.pk, key, request_fingerprint])
                claimed = cursor.fetchone()
            if claimed is None:
                row = IdempotencyKey.objects.get(application=application, key=key)
                return _replay(row, request_fingerprint)
            response = handler(view, request, *args, **kwargs)
            if response.status_code >= 300:
                # Not a success: do not keep the key, so the client's retry runs for real.
                transaction.set_rollback(True)
                return response
            body = JSONRenderer().render(response.data).decode() if response.data else None
            created_id = getattr(response, "created_id", None) or (
                response.data.get("id") if response.data else None
            )
            headers = {h: response[h] for h in REPLAYED_HEADERS if h in response}
            with connection.cursor() as cursor:
                cursor.execute(
                    _ANSWER,
                    [
                        response.status_code,
                        body,
                        json.dumps(headers),
                        created_id,
                        claimed[0],
                    ],
                )
        return response

    return wrapper
