"""Problem types of the referrals API, each with a stable `type` code clients can branch on."""

from api.errors import (
    Conflict,
    DomainError,
    Gone,
    Unprocessable,
)


class ConsentRevoked(Gone):
    code = "consent-revoked"


class ConsentExpired(Gone):
    code = "consent-expired"


class RetentionEnded(Gone):
    code = "retention-ended"


class PartnershipSuspended(Conflict):
    code = "partnership-suspended"


class PartnershipRequired(Unprocessable):
    code = "partnership-required"


class CategoryNotAllowed(Unprocessable):
    code = "category-not-allowed"


class NotConsented(Conflict):
    code = "not-consented"


class IllegalTransition(Conflict):
    code = "illegal-transition"


class ReferralClosed(Conflict):
    code = "referral-closed"


class SelfServiceRefused(DomainError):
    """A code and PIN that open nothing: unknown code, wrong PIN, a code without self-service or
    one no longer in use all answer exactly this, so none can be told from another. A 422: the
    request matches the schema, and what refuses it is which codes and PINs exist."""

    status = 422
    code = "self-service-refused"


class SelfServiceThrottled(DomainError):
    """Too many tries from this address or for this code, or the code is locked. Known and
    unknown codes lock alike."""

    status = 429
    code = "self-service-throttled"

    def __init__(self, detail: str, *, retry_after: int, **extensions):
        super().__init__(detail, **extensions)
        self.headers = {"Retry-After": str(max(int(retry_after), 1))}
