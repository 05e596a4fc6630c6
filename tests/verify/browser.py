"""The docs pages in a real browser (Debian's chromium driven by Playwright; nothing downloaded at
run time), under the stack `make run` started (tests/verify/readme.py):

- Swagger UI lists every tag and operation of the live document, authorises with the client
  credentials grant, and "Try it out" on GET /api/v1/me answers 200;
- Redoc lists every operation;
- neither page makes the browser contact another host (a request the page's Content Security
  Policy blocks never leaves the browser, so it does not count).

Screenshots land in var/verify/."""

import importlib.metadata
import json
import urllib.request
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

from tests.verify.stack import VAR, say
from tests.verify.tools import CHROMIUM

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
METHODS = {"get", "put", "patch", "post", "delete"}


def documented(base_url: str) -> tuple[set[str], int]:
    """Tags and operation count (paths' and webhooks') of the document the server publishes."""
    with urllib.request.urlopen(base_url + "/api/schema?format=json", timeout=30) as response:
        document = json.load(response)
    tags, operations = set(), 0
    # Both pages show each webhook (OAS 3.1 `webhooks:`) as an operation too.
    for item in [*document["paths"].values(), *document.get("webhooks", {}).values()]:
        for method, operation in item.items():
            if method in METHODS:
                operations += 1
                tags.update(operation.get("tags", []))
    return tags, operations


class Requests:
    """Every request a page makes, and those that reached another host."""

    def __init__(self, page, origin: str):
        self.origin = origin
        self.all: list[str] = []
        self.blocked: set[str] = set()
        page.on("request", lambda request: self.all.append(request.url))
        page.on(
            "requestfailed",
            lambda request: request.failure == "csp" and self.blocked.add(request.url),
        )

    def foreign(self) -> list[str]:
        return [
            url
            for url in self.all
            if not url.startswith(("data:", "blob:"))
            and urlsplit(url).netloc != self.origin
            and url not in self.blocked
        ]


def swagger_ui(page, docs_url, tags, operation_count, client_id, client_secret) -> None:
    page.goto(docs_url, wait_until="networkidle")
    page.wait_for_selector(".opblock-tag-section", timeout=30_000)
    shown_tags = {el.get_attribute("data-tag") for el in page.query_selector_all(".opblock-tag")}
    shown_operations = len(page.query_selector_all(".opblock"))
    assert tags <= shown_tags, f"Swagger UI: tags not shown: {sorted(tags - shown_tags)}"
    assert shown_operations == operation_count, (
        f"Swagger UI shows {shown_operations} operations, the document has {operation_count}"
    )

    say("browser: authorising with client credentials in Swagger UI")
    page.click("button.authorize")
    dialog = page.locator(".modal-ux")
    dialog.locator("input[data-name=clientId]").fill(client_id)
    dialog.locator("input[data-name=clientSecret]").fill(client_secret)
    dialog.get_by_text("select all").first.click()  # every scope the client was granted
    with page.expect_response(lambda r: "/oauth/token" in r.url) as token_response:
        dialog.locator("button.authorize").first.click()
    assert token_response.value.status == 200, token_response.value.text()
    dialog.locator("button.close-modal").first.click()

    say("browser: Try it out on GET /api/v1/me")
    me = page.locator(".opblock-get", has=page.locator('[data-path="/api/v1/me"]')).first
    me.locator(".opblock-summary").click()
    me.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/me")) as me_response:
        me.locator("button.execute").click()
    assert me_response.value.status == 200, me_response.value.text()
    status = me.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for()
    assert status.inner_text().strip().startswith("200"), status.inner_text()
    me.scroll_into_view_if_needed()
    page.screenshot(path=str(VAR / "swagger-ui.png"), full_page=False)


def redoc(page, redoc_url, operation_count) -> None:
    page.goto(redoc_url, wait_until="networkidle")
    page.wait_for_selector("[data-section-id^='operation/']", timeout=30_000)
    listed = len(page.query_selector_all("li[data-item-id*='operation/']"))
    sections = len(page.query_selector_all("[data-section-id^='operation/']"))
    assert listed == sections == operation_count, (
        f"Redoc lists {listed} operations and shows {sections}; the document has {operation_count}"
    )
    page.screenshot(path=str(VAR / "redoc.png"), full_page=False)


def docs_pages(base_url, docs_url, redoc_url, client_id, client_secret) -> dict:
    tags, operation_count = documented(base_url)
    VAR.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        version = browser.version
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})
            requests = Requests(page, urlsplit(base_url).netloc)
            swagger_ui(page, docs_url, tags, operation_count, client_id, client_secret)
            say("browser: Redoc")
            redoc(page, redoc_url, operation_count)
        finally:
            browser.close()
    foreign = requests.foreign()
    assert not foreign, f"requests to other hosts: {foreign}"
    return {
        "tool": f"playwright {importlib.metadata.version('playwright')}, chromium {version}",
        "detail": f"Swagger UI and Redoc: {len(tags)} tags, {operation_count} operations; "
        f"OAuth and Try it out /me 200; {len(requests.all)} requests, none to another host "
        f"({len(requests.blocked)} blocked by the page's policy); screenshots in "
        f"{VAR.relative_to(VAR.parent.parent)}",
    }
