import pytest
from django.test import Client as DjangoClient


@pytest.fixture
def http(db):
    """A plain HTTP client with no credentials, for the OAuth endpoints and plain URLs. Every
    request touches the database (rate limits, audit), hence `db`."""
    return DjangoClient()
