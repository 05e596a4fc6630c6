"""Static files are served in every mode by the API's own processes (WhiteNoise): the docs pages'
assets load under the settings `make run` and the tests use (from the installed apps) and under
production settings (hashed, compressed copies from `collectstatic`, behind gunicorn)."""

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

from tests.servers import free_port, run_python

ASSET = re.compile(r"""(?:src|href)="(/static/[^"]+)\"""")
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


def assets(html: str) -> list[str]:
    found = ASSET.findall(html)
    assert found, html
    return found


@pytest.mark.parametrize("page", ["/api/docs", "/api/redoc"])
def test_docs_pages_load_their_assets_from_this_server(http, page):
    response = http.get(page)
    assert response.status_code == 200
    for url in assets(response.content.decode()):
        asset = http.get(url)
        assert asset.status_code == 200, url
        body = b"".join(asset.streaming_content)
        with open(finders.find(url.removeprefix("/static/")), "rb") as original:
            assert body == original.read(), url
        extension = os.path.splitext(url)[1]
        assert asset["Content-Type"].startswith(CONTENT_TYPES[extension]), url


def test_redoc_keeps_the_browser_from_fetching_its_vendors_logo(http):
    """Redoc's sidebar shows an image from its vendor's server; the page's policy blocks it (the
    browser check in `make verify` sees it blocked)."""
    html = http.get("/api/redoc").content.decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert policy, html
    directives = dict(part.strip().split(" ", 1) for part in policy[1].split(";"))
    assert directives["img-src"] == "'self' data:"
    assert directives["default-src"] == "'self'"


def test_an_unknown_static_file_is_a_404_problem(http):
    response = http.get("/static/drf_spectacular_sidecar/no-such-file.js")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/problem+json")


def fetch(url: str, **headers: str):
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_production_serves_the_collected_hashed_files(tmp_path):
    """The deploy steps the README names: `collectstatic`, then gunicorn under production
    settings. The docs pages link hashed names, which are served compressed and cached for good."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "api.settings.production",
        "DATABASE_URL": "postgres:///unused",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "REFERRAL_KEKS": "k1:" + "A" * 43 + "=",
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    collected = run_python(
        "manage.py", "collectstatic", "--no-input", "-v", "0", env=env, timeout=300
    )
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "api.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _, _ = fetch(base + "/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "gunicorn did not start"
            time.sleep(0.2)

        for page in ("/api/docs", "/api/redoc"):
            status, _, body = fetch(base + page)
            assert status == 200, (page, body[:300])
            for url in assets(body.decode()):
                name = os.path.basename(url)
                assert re.search(r"\.[0-9a-f]{12}\.\w+$", name), f"{url} is not a hashed name"
                status, headers, content = fetch(base + url, **{"Accept-Encoding": "gzip"})
                assert status == 200, url
                assert content, url
                assert "immutable" in headers["Cache-Control"], (url, headers["Cache-Control"])
                if url.endswith((".js", ".css")):
                    assert headers["Content-Encoding"] == "gzip", url
    finally:
        server.terminate()
        server.wait(timeout=15)
