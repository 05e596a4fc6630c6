"""Cursor pagination, and the sealing every cursor of the API carries (lists and the search).

A cursor holds a position in a sort order, and positions can be secret: the search sorts by
distance from where the person is, so a readable cursor would give away distances (a few of
them, to known services, give away the place), and a forgeable one would let a caller choose
them. Every cursor is therefore sealed with AES-GCM under a key derived from SECRET_KEY, with
the query it was given for and the caller's organisation as associated data: it can be neither
read nor altered, and anything this list did not give out is a 422 naming `cursor` (a 400 when
it is not even base64url)."""

import base64
import binascii
import functools
import json
import os
import re
from urllib.parse import parse_qs, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils.crypto import salted_hmac
from rest_framework.pagination import BasePagination, Cursor
from rest_framework.pagination import CursorPagination as BaseCursorPagination
from rest_framework.utils.urls import replace_query_param

from api.errors import InvalidInput, Unprocessable

CURSOR_KEY_SALT = "srn.api.pagination.cursor"
NONCE_BYTES = 12
# What seal_cursor gives out: unpadded base64url.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def invalid_cursor(cursor: str = "") -> InvalidInput | Unprocessable:
    """A 400 for a cursor that is not base64url, as the schema states; a 422 for one that is but
    that this list did not give out (the schema cannot tell which ones it did)."""
    error = Unprocessable if re.fullmatch(CURSOR_PATTERN, cursor) else InvalidInput
    return error(
        "`cursor` is not one this query gave out: start again without it.",
        errors=[{"pointer": "/cursor", "detail": "Invalid cursor."}],
    )


@functools.lru_cache(maxsize=2)
def _sealer(secret_key: str) -> AESGCM:
    return AESGCM(
        salted_hmac(CURSOR_KEY_SALT, b"cursor key", secret=secret_key, algorithm="sha256").digest()
    )


def seal_cursor(payload: str, *, binding: str) -> str:
    """An opaque cursor for `payload`, good only where `binding` is the same. A fresh nonce each
    time, so two cursors for the same position do not even compare equal."""
    nonce = os.urandom(NONCE_BYTES)
    sealed = _sealer(settings.SECRET_KEY).encrypt(nonce, payload.encode(), binding.encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def open_cursor(cursor: str, *, binding: str) -> str:
    """The payload of a cursor this server sealed for `binding`, else a problem naming `cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
        if len(nonce) < NONCE_BYTES:
            raise ValueError
        return _sealer(settings.SECRET_KEY).decrypt(nonce, sealed, binding.encode()).decode()
    except (ValueError, TypeError, binascii.Error, UnicodeError, InvalidTag):
        raise invalid_cursor(cursor) from None


def page_schema(results: dict) -> dict:
    """Every list's envelope. DRF's version says `nullable` (not OpenAPI 3.1) and its example
    URL ends in a stray quote, so validators reject both the document's examples and null links.
    Every link has an example so drf-spectacular can wrap an operation's example item into a
    page."""
    link = {"type": ["string", "null"], "format": "uri"}
    example = "https://srn.example.org/api/v1/referrals?cursor=cD00ODY%3D"
    return {
        "type": "object",
        "required": ["next", "previous", "results"],
        "properties": {
            "next": {**link, "example": example, "description": "The next page, if any."},
            "previous": {**link, "example": None, "description": "The previous page, if any."},
            "results": results,
        },
    }


def one_page(results: list) -> dict:
    """A list that is never paged, in the envelope every list has."""
    return {"next": None, "previous": None, "results": results}


class OnePage(BasePagination):
    """Documents a list whose whole answer is one page (`one_page`): the same envelope and
    schema component as a paginated list, without cursor or limit parameters. For the schema
    only; such a view builds its answer itself."""

    def get_paginated_response_schema(self, schema):
        return page_schema(schema)

    def get_schema_operation_parameters(self, view):
        return []


class CursorPagination(BaseCursorPagination):
    """Cursor pagination on every list: stable under inserts, newest first by default.

    A cursor this list did not give out for this query and organisation is a 422, and a
    `limit` outside 1 to the maximum a 400 (the schema states the bounds), each naming the
    parameter: DRF's own answers (404 for the cursor, a silent default or cap for the limit)
    hide the caller's mistake."""

    page_size = 25
    page_size_query_param = "limit"
    max_page_size = 100
    ordering = ("-created", "-id")

    def get_paginated_response_schema(self, schema):
        return page_schema(schema)

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise InvalidInput(
                f"`limit` must be a whole number from 1 to {self.max_page_size}.",
                errors=[
                    {"pointer": "/limit", "detail": f"Must be from 1 to {self.max_page_size}."}
                ],
            )
        return int(raw)

    def get_schema_operation_parameters(self, view):
        """The bounds the server enforces, stated: a limit from 1 to the maximum, a cursor as
        the list gave it out (base64url)."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.cursor_query_param:
                parameter["description"] = (
                    "The `next` or `previous` link's cursor, as the list gave it out."
                )
                parameter["schema"].update(minLength=1, pattern=CURSOR_PATTERN)
            elif parameter["name"] == self.page_size_query_param:
                parameter["description"] = "How many results a page holds."
                parameter["schema"].update(
                    minimum=1, maximum=self.max_page_size, default=self.page_size
                )
        return parameters

    def cursor_binding(self, request) -> str:
        """The list, its filters (every query parameter but the cursor and the page size) and
        the caller's organisation."""
        skip = {self.cursor_query_param, self.page_size_query_param}
        params = sorted(
            (name, value)
            for name, values in request.query_params.lists()
            if name not in skip
            for value in values
        )
        organisation = getattr(request, "organisation", None)
        owner = str(organisation.pk) if organisation is not None else None
        return json.dumps(["list", request.path, params, owner])

    def encode_cursor(self, cursor):
        tokens = {}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = cursor.position
        sealed = seal_cursor(urlencode(tokens), binding=self.cursor_binding(self.request))
        return replace_query_param(self.base_url, self.cursor_query_param, sealed)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        tokens = parse_qs(
            open_cursor(encoded, binding=self.cursor_binding(request)), keep_blank_values=True
        )
        try:
            offset = int(tokens.get("o", ["0"])[0])
            reverse = bool(int(tokens.get("r", ["0"])[0]))
            if not 0 <= offset <= self.offset_cutoff:
                raise ValueError
        except ValueError:
            raise invalid_cursor(encoded) from None
        return Cursor(offset=offset, reverse=reverse, position=tokens.get("p", [None])[0])
