"""Where each operation's summary and description come from. Apart from api/schema.py because
the schema class is loaded while drf-spectacular's own views are being imported."""

import inspect

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema


class AutoSchema(SpectacularAutoSchema):
    """Each operation is documented once, in the docstring of the method that serves it: the
    first paragraph is the summary, the others the description. A paragraph's line breaks are
    only wrapping, so they become spaces. A view class's docstring is for its readers, never
    for the API document."""

    def _paragraphs(self) -> list[str]:
        method = getattr(self.view, getattr(self.view, "action", None) or self.method.lower())
        doc = inspect.getdoc(method) or ""
        return [" ".join(paragraph.split()) for paragraph in doc.split("\n\n") if paragraph]

    def get_summary(self):
        return next(iter(self._paragraphs()), None)

    def get_description(self):
        return "\n\n".join(self._paragraphs()[1:])


def docstring_with(**values):
    """The decorated method's docstring with `values` filled in: where an operation's
    documentation cites a constant, it names it instead of copying it."""

    def fill(method):
        method.__doc__ = method.__doc__.format(**values)
        return method

    return fill
