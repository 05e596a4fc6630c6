"""Model instances from one row of a raw SQL join: hot reads fetch several related objects in
one statement and still hand the ORM's objects on."""

import functools
from dataclasses import dataclass

from django.db import connection


@dataclass(frozen=True)
class Joined:
    """One model's columns in a joined SELECT, under a table alias."""

    model: type
    alias: str
    fields: tuple[str, ...]

    @classmethod
    def of(cls, model, alias: str, only: set[str] | None = None) -> "Joined":
        # In model order: from_db fills the fields it is not given as deferred, in that order.
        fields = tuple(
            f.attname for f in model._meta.concrete_fields if only is None or f.attname in only
        )
        return cls(model, alias, fields)

    @functools.cached_property
    def converters(self) -> tuple:
        """Each field's conversion from the database, or None: looked up once, not per row."""
        return tuple(
            getattr(self.model._meta.get_field(name), "from_db_value", None) for name in self.fields
        )

    @property
    def columns(self) -> str:
        return ", ".join(f'{self.alias}."{name}"' for name in self.fields)


def select_list(parts: tuple[Joined, ...]) -> str:
    return ", ".join(part.columns for part in parts)


def instances(row, parts: tuple[Joined, ...]) -> list:
    """The row's leading columns as one instance per part (fields left out load on access).
    Values pass through each field's own conversion from the database, as the ORM's would (a
    JSONField's text becomes its value)."""
    out, start = [], 0
    for part in parts:
        end = start + len(part.fields)
        values = [
            value if convert is None else convert(value, None, connection)
            for convert, value in zip(part.converters, row[start:end], strict=True)
        ]
        out.append(part.model.from_db("default", part.fields, values))
        start = end
    return out
