"""Every route the URL configuration serves, read from the resolver itself (not from the OpenAPI
generator, which only sees what it is shown), as (path template, methods, URL name). Used by the
routes-equal-documentation test and the tenancy matrix, so a new route cannot be missed."""

import re
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# <uuid:pk> (path converters) and (?P<pk>...) (regex routes) both become {pk}.
CONVERTER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
GROUP = re.compile(r"\(\?P<([^>]+)>[^)]*\)")


@dataclass(frozen=True)
class Route:
    template: str  # as served: "/api/v1/referrals/{pk}/accept", "/api/v1/webhook-endpoints"
    methods: frozenset
    name: str
    parameters: tuple

    @property
    def shape(self) -> str:
        """The template with parameter names erased, to compare with OpenAPI paths."""
        return re.sub(r"{[^}]+}", "{}", self.template.rstrip("/"))


def template_of(pattern: str) -> str:
    pattern = GROUP.sub(r"{\1}", pattern)  # first: a group's regex may contain "<" or "{"
    pattern = CONVERTER.sub(r"{\1}", pattern)
    pattern = pattern.replace("^", "").replace("$", "").replace("/?", "/").replace("\\", "")
    return "/" + pattern.lstrip("/")


def methods_of(callback) -> frozenset:
    actions = getattr(callback, "actions", None)  # a router-built viewset route
    if actions:
        return frozenset(method for method in actions if method in HTTP_METHODS)
    view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view is None:
        return frozenset()  # a plain function view: only allowlisted ones exist
    return frozenset(method for method in HTTP_METHODS if hasattr(view, method))


def walk(resolver=None, prefix: str = "", namespace: str = ""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = namespace + (f"{entry.namespace}:" if entry.namespace else "")
            yield from walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            template = template_of(prefix + str(entry.pattern))
            yield Route(
                template=template,
                methods=methods_of(entry.callback),
                name=namespace + (entry.name or ""),
                parameters=tuple(re.findall(r"{([^}]+)}", template)),
            )


def api_routes() -> list[Route]:
    return [route for route in walk() if route.template.startswith("/api/v1/")]
