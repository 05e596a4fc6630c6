"""If-Match (RFC 9110 §13.1.1) for every write that two people may make at once: a referral's
transitions and safe contact, a service's capacity. One grammar, stated in the OpenAPI document
as the header's pattern, and one comparison."""

import re

from api.errors import DomainError, PreconditionFailed, PreconditionRequired

# `*` or a comma-separated list of entity tags (RFC 9110 §8.8.3): [W/] DQUOTE *etagc DQUOTE.
_TAG = r'(W/)?"[!#-~]*"'
IF_MATCH_PATTERN = rf"^[ \t]*(\*|{_TAG}([ \t]*,[ \t]*{_TAG})*)[ \t]*$"
_IF_MATCH = re.compile(IF_MATCH_PATTERN)
IF_MATCH_DESCRIPTION = (
    'The ETag of your last read, quoted as it was sent (`"3"`), or `*`. Without it the write is '
    "refused with 428; with an ETag that is no longer current, 412; an unquoted `3` is a 400."
)


class MalformedIfMatch(DomainError):
    status = 400
    code = "malformed-if-match"


def check_if_match(if_match: str | None, etag: str, *, what: str, **extensions) -> None:
    """Refuse the write unless If-Match names `etag` (or is `*`). `extensions` go into the 412
    (the referral's status now); both refusals carry the current ETag."""
    if if_match is None:
        raise PreconditionRequired(
            f"Send If-Match with the ETag of the {what}: this write is refused without it.",
            etag=etag,
        )
    if not _IF_MATCH.match(if_match):
        raise MalformedIfMatch(
            'If-Match must be `*` or quoted ETags such as "3", as the ETag header sent them.'
        )
    tags = [tag.strip() for tag in if_match.split(",")]
    # Strong comparison: a weak tag never matches.
    if "*" not in tags and etag not in tags:
        raise PreconditionFailed(
            f"The {what} changed since you read it. Read it again and retry.",
            etag=etag,
            **extensions,
        )


def if_match_parameter(description: str = IF_MATCH_DESCRIPTION, *, required: bool = True):
    """The If-Match header as the OpenAPI document states it, with its grammar as a pattern."""
    from drf_spectacular.utils import OpenApiParameter

    return OpenApiParameter(
        "If-Match",
        str,
        location=OpenApiParameter.HEADER,
        required=required,
        pattern=IF_MATCH_PATTERN,
        description=description,
    )
