"""One format for every timestamp the API writes, whoever builds the JSON (DRF, SQL, an event's
payload): RFC 3339 in UTC with `Z`, microseconds only when there are any, as DRF renders it."""

from datetime import UTC, datetime


def iso(value: datetime | None) -> str | None:
    """An aware datetime as DRF renders it: UTC with `Z`."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def iso_sql(column: str) -> str:
    """The same, for a timestamptz column in SQL that builds JSON (json_build_object would write
    the session's `+00:00`)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"WHEN date_trunc('second', {column}) = {column} "
        f"""THEN to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS"Z"') """
        f"""ELSE to_char({utc}, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') END"""
    )
