"""The API plus the bare comparison views the benchmarks measure it against. Mounted only by
api.settings.bench."""


from api.urls import handler400, handler403, handler404, handler500  # noqa: F401
from api.urls import urlpatterns as api_urlpatterns

bench_urlpatterns: list = []

urlpatterns = [*api_urlpatterns, *bench_urlpatterns]
