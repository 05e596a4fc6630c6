"""The person's page. Every answer is 200 or a 303 after a form (a problem document is for
programs, not for a person under stress), `no-store` (CacheControlMiddleware),
`Referrer-Policy: no-referrer`, and a Content-Security-Policy that allows only this page's own
inline style and script, by nonce: nothing from another host, no analytics.

The one cookie is the session (api.middleware.ScopedSessionMiddleware): it holds the CSRF
secret, the self-service token and the chosen language, and ends ten minutes after the last
request. Signing in cycles its key; leaving flushes it and ends the token."""

import functools
import secrets

from django.conf import settings
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.decorators import decorator_from_middleware
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from api.errors import DomainError
from api.throttling import client_address
from referrals import selectors, services
from referrals.errors import SelfServiceRefused, SelfServiceThrottled
from referrals.me.forms import CHANNEL_NAMES, ChannelsForm, SignInForm

SESSION_SECONDS = int(services.SELF_TOKEN_LIFETIME.total_seconds())
TOKEN = "self_token"
LANGUAGE = "language"
NOTICE = "notice"

NOTICES = {
    "stopped": _("Done. They will not contact you."),
    "channels": _("Done. They will contact you only in the way you chose."),
    "withdrawn": _(
        "Done. Your details are deleted. After you close this page, your code will not work "
        "any more. That is normal."
    ),
    "timed_out": _(
        "For your safety, this page closed after 10 minutes. Type your code and PIN again."
    ),
    "expired_form": _("This page was open too long. Please try again."),
    "not_possible": _("This cannot be changed any more."),
}
REFUSED = _(
    "That did not work. Check your code and PIN and try again. A code stops working when your "
    "request is finished or when you took back your permission."
)
TOO_MANY = _("Too many tries. Wait a while, then try again.")


class PersonPageCsrf(CsrfViewMiddleware):
    """Django's CSRF check, for a page that sends no referrer. Under `Referrer-Policy:
    no-referrer` browsers send `Origin: null` with the page's own forms (Fetch: the origin of a
    request whose referrer policy is no-referrer is serialised as null), which Django's origin
    check refuses. Here a null origin passes that check; the token tied to the session still
    decides, and the session cookie is not sent cross-site (SameSite=Lax) in the first place.
    Any other foreign origin is refused as before."""

    def _origin_verified(self, request):
        return request.META.get("HTTP_ORIGIN") == "null" or super()._origin_verified(request)


def person_csrf(view):
    """The page's own CSRF check in place of the site-wide one (which would refuse null)."""
    return csrf_exempt(decorator_from_middleware(PersonPageCsrf)(view))


def _chosen_language(request) -> str | None:
    wanted = request.GET.get("lang")
    if wanted in dict(settings.LANGUAGES):
        request.session[LANGUAGE] = wanted
    return request.session.get(LANGUAGE)


def person_page(view):
    """The headers and session rules every answer of the page shares."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        request.session.set_expiry(SESSION_SECONDS)
        request.csp_nonce = secrets.token_urlsafe(16)
        response = view(request, *args, **kwargs)
        nonce = f"'nonce-{request.csp_nonce}'"
        response["Content-Security-Policy"] = (
            f"default-src 'none'; style-src {nonce}; script-src {nonce}; connect-src 'self'; "
            "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        response["Referrer-Policy"] = "no-referrer"
        return response

    return wrapped


def person_route(*methods: str):
    """Every route of the page: only these methods, the page's CSRF check, its headers and
    session rules."""

    def decorate(view):
        return require_http_methods(list(methods))(person_csrf(person_page(view)))

    return decorate


def _grant(request):
    """The session's self-service grant; an expired one is dropped with a notice."""
    token = request.session.get(TOKEN)
    if token is None:
        return None
    grant = selectors.self_grant(token=token)
    if grant is None:
        del request.session[TOKEN]
        request.session[NOTICE] = "timed_out"
    return grant


def _render(request, template: str, language: str, context: dict, **kwargs):
    with translation.override(language):
        notice = NOTICES.get(request.session.pop(NOTICE, None))
        context = {
            **context,
            "notice": notice,
            "languages": settings.LANGUAGES,
            "language": language,
            "quick_exit": settings.QUICK_EXIT_URL,
            "nonce": request.csp_nonce,
        }
        response = render(request, template, context, **kwargs)
    response["Content-Language"] = language
    return response


def _page_language(request) -> str:
    return (
        _chosen_language(request)
        or selectors.person_language(translation.get_language_from_request(request))
        or settings.LANGUAGE_CODE
    )


@person_route("GET", "POST")
def page(request):
    """Sign-in (code and PIN), or, signed in, the status page."""
    grant = _grant(request)
    if grant is not None and request.method == "GET":
        return _status_page(request, grant)
    form = SignInForm(request.POST if request.method == "POST" else None)
    error = None
    if form.is_valid():
        try:
            token = services.self_sign_in(
                code=form.cleaned_data["code"],
                pin=form.cleaned_data["pin"],
                address=client_address(request),
            )[0]
        except SelfServiceRefused:
            error = REFUSED
        except SelfServiceThrottled:
            error = TOO_MANY
        else:
            request.session.cycle_key()
            request.session[TOKEN] = token
            return _back(request)
    elif form.is_bound:
        error = REFUSED
    return _render(
        request, "me/sign_in.html", _page_language(request), {"form": form, "error": error}
    )


def _status_page(request, grant):
    person = selectors.self_status(grant=grant, language=_chosen_language(request))
    return _render(
        request,
        "me/status.html",
        person.language,
        {
            "person": person,
            "disclosures": selectors.self_disclosures(grant=grant),
            "channel_names": CHANNEL_NAMES,
        },
    )


def _back(request, notice: str | None = None):
    """Back to the page, with a notice to show there once."""
    if notice is not None:
        request.session[NOTICE] = notice
    return redirect("me:page", permanent=False)


@person_route("POST")
def contact(request):
    """Stop all contact, or name the channels that are safe now."""
    grant = _grant(request)
    if grant is None:
        return _back(request)
    if request.POST.get("stop"):
        change = {"do_not_contact": True}
    else:
        form = ChannelsForm(request.POST)
        if not form.is_valid():
            return _back(request)
        change = {"channels": form.cleaned_data["channels"]}
    try:
        services.self_safe_contact_change(grant=grant, **change)
    except DomainError:
        return _back(request, "not_possible")
    return _back(request, "stopped" if change.get("do_not_contact") else "channels")


@person_route("GET", "POST")
def withdraw(request):
    """Ask once more (the details cannot come back), then withdraw."""
    grant = _grant(request)
    if grant is None:
        return _back(request)
    if request.method == "POST":
        services.self_withdraw(grant=grant)
        return _back(request, "withdrawn")
    person = selectors.self_status(grant=grant, language=_chosen_language(request))
    if not person.can_withdraw:
        return _back(request)
    return _render(request, "me/withdraw.html", person.language, {})


@person_route("POST")
def leave(request):
    """Close the page: end the token and the session (the quick exit sends this too)."""
    grant = _grant(request)
    if grant is not None:
        services.self_sign_out(grant=grant)
    request.session.flush()
    return redirect("me:page", permanent=False)


def csrf_failure(request, reason=""):
    """On the page, a form kept open past the session (ten minutes) starts again, in words;
    elsewhere the API's problem document."""
    if request.path_info == "/me" or request.path_info.startswith("/me/"):
        return _back(request, "expired_form")
    from api.errors import csrf_failure as problem

    return problem(request, reason)
