"""Swagger UI in a real browser (Debian's chromium driven by Playwright; nothing downloaded at run
time): every tag and operation is listed, client-credentials authorisation works, "Try it out"
on /api/v1/me answers 200, and the page asks no host but the API's own for anything."""

import importlib.metadata
from urllib.parse import urlsplit

import yaml
from playwright.sync_api import sync_playwright

from tests.verify import contract
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
SCREENSHOT = VAR / "swagger-ui.png"


def documented() -> tuple[set[str], int]:
    document = yaml.safe_load(contract.GENERATED.read_text())
    tags, operations = set(), 0
    for item in document["paths"].values():
        for method, operation in item.items():
            if method in {"get", "put", "patch", "post", "delete"}:
                operations += 1
                tags.update(operation.get("tags", []))
    return tags, operations


def docs_page(stack) -> dict:
    tags, operation_count = documented()
    origin = urlsplit(stack.base_url).netloc
    requests, foreign = [], []
    entry = stack.credentials["demo-clinic"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        version = browser.version
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 2400})

            def record(request):
                requests.append(request.url)
                local = request.url.startswith(("data:", "blob:"))
                if not local and urlsplit(request.url).netloc != origin:
                    foreign.append(request.url)

            page.on("request", record)
            page.goto(stack.base_url + "/api/docs/", wait_until="networkidle")
            page.wait_for_selector(".opblock-tag-section", timeout=20_000)
            shown_tags = {
                el.get_attribute("data-tag") for el in page.query_selector_all(".opblock-tag")
            }
            shown_operations = len(page.query_selector_all(".opblock"))
            assert tags <= shown_tags, f"tags not shown: {sorted(tags - shown_tags)}"
            assert shown_operations == operation_count, (
                f"{shown_operations} operations shown, {operation_count} documented"
            )

            say("browser: authorising with client credentials in Swagger UI")
            page.click("button.authorize")
            dialog = page.locator(".modal-ux")
            dialog.locator("input[data-name=clientId]").fill("demo-clinic")
            dialog.locator("input[data-name=clientSecret]").fill(entry["client_secret"])
            dialog.get_by_text("select all").first.click()  # every scope the client was granted
            with page.expect_response(lambda r: "/oauth/token/" in r.url) as token_response:
                dialog.locator("button.authorize").first.click()
            assert token_response.value.status == 200, token_response.value.text()
            dialog.locator("button.close-modal").first.click()

            say("browser: Try it out on GET /api/v1/me")
            me = page.locator("#operations-me-me_retrieve")
            me.locator(".opblock-summary").click()
            me.locator("button.try-out__btn").click()
            with page.expect_response(lambda r: r.url.endswith("/api/v1/me")) as me_response:
                me.locator("button.execute").click()
            assert me_response.value.status == 200, me_response.value.text()
            me.locator(".live-responses-table tr.response .response-col_status").first.wait_for()
            shown_status = me.locator(
                ".live-responses-table tr.response .response-col_status"
            ).first
            assert shown_status.inner_text().strip().startswith("200"), shown_status.inner_text()
            me.scroll_into_view_if_needed()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=False)
        finally:
            browser.close()
    assert not foreign, f"requests to other hosts: {foreign}"
    return {
        "name": "Swagger UI in Chromium: tags, operations, OAuth, Try it out",
        "tool": f"playwright {importlib.metadata.version('playwright')}, chromium {version}",
        "ok": True,
        "detail": f"{len(tags)} tags, {operation_count} operations, /me 200, "
        f"{len(requests)} requests all to {origin}; screenshot {SCREENSHOT.relative_to(VAR.parent.parent)}",
    }
