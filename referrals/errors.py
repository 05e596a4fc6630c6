"""Problem types of the referrals API, each with a stable `type` code clients can branch on."""

from api.errors import (
    Conflict,
    ForbiddenAction,
    Gone,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
)


class ReferralNotFound(NotFound):
    code = "referral-not-found"


class ConsentRevoked(Gone):
    code = "consent-revoked"


class ConsentExpired(Gone):
    code = "consent-expired"


class PartnershipRequired(Unprocessable):
    code = "partnership-required"


class CategoryNotAllowed(Unprocessable):
    code = "category-not-allowed"


class NotConsented(ForbiddenAction):
    code = "not-consented"


class WrongSide(ForbiddenAction):
    code = "wrong-side"


class IllegalTransition(Conflict):
    code = "illegal-transition"


class StaleReferral(PreconditionFailed):
    code = "stale-etag"


class IfMatchRequired(PreconditionRequired):
    code = "if-match-required"
