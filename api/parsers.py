"""The JSON request parser every view uses."""

from rest_framework import parsers

MAX_DEPTH = 32


class JSONParser(parsers.JSONParser):
    """DRF's parser, refusing bodies nested more than MAX_DEPTH levels: Python's decoder
    recurses once per level, so a few thousand `[` end in a RecursionError (a 500), and no body
    this API accepts is more than a few levels deep. Every body the API documents is an object,
    so an array, a string, a number or null is refused here, once for every view (an action's
    optional body read `[]` or `null` as "no body")."""

    top_level = dict
    top_level_name = "an object"

    def parse(self, stream, media_type=None, parser_context=None):
        # Imported here: api.errors imports DRF's views, which import this module.
        from api.errors import DomainError, InvalidInput

        try:
            data = super().parse(stream, media_type, parser_context)
            too_deep = nested_deeper(data, MAX_DEPTH)
        except RecursionError:
            too_deep = True
        if too_deep:
            raise DomainError(f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
        if not isinstance(data, self.top_level):
            raise InvalidInput(
                "The body does not match the schema.",
                errors=[{"pointer": "/", "detail": f"Must be {self.top_level_name}."}],
            )
        return data


def nested_deeper(data, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels, without recursing."""
    stack = [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        if level > limit:
            return True
        stack.extend((child, level + 1) for child in value)
    return False
