"""The API plus its static files (Swagger UI's assets), for api.settings.verify only: gunicorn
serves no static files, and the browser check must load the docs page as a person would."""

from django.contrib.staticfiles.views import serve
from django.urls import re_path

from api.urls import handler400, handler403, handler404, handler500  # noqa: F401
from api.urls import urlpatterns as api_urlpatterns

urlpatterns = [
    *api_urlpatterns,
    re_path(r"^static/(?P<path>.*)$", serve, {"insecure": True}),
]
