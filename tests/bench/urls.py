"""The API plus the bare comparison views the benchmarks measure it against. Mounted only by
api.settings.bench."""

from api.urls import handler400, handler403, handler404, handler500  # noqa: F401
from api.urls import urlpatterns as api_urlpatterns
from tests.bench.directory import bare_urlpatterns as directory_bare_urlpatterns
from tests.bench.referrals import bare_urlpatterns as referrals_bare_urlpatterns

bench_urlpatterns: list = [*directory_bare_urlpatterns(), *referrals_bare_urlpatterns()]

urlpatterns = [*api_urlpatterns, *bench_urlpatterns]
