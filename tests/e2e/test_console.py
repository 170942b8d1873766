"""The console in a real browser: Debian's chromium, driven by Playwright, against the local cloud.

Controls are found by role and accessible name, the contract the console keeps. Every page
routes its requests through a guard that fails the test for any request off loopback, and a
console error or an uncaught exception on any screen fails it too.

Without chromium the tests skip with one line, unless ``ORDO_REQUIRE_BROWSER=1`` (CI sets it),
where a missing browser is a failure. ``ORDO_SCREENSHOTS=docs/screens`` (``make screenshots``)
keeps a picture of each screen.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    FilePayload,
    Page,
    Route,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import PASSWORD, Api

LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}
# A 4xx the console handles (a field error, a 404 logout route, a refused admin call) is still
# logged by chromium as "Failed to load resource"; that line is not an error of the page.
HANDLED = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")
TIMEOUT_MS = 20_000
expect.set_options(timeout=TIMEOUT_MS)


def chromium_path() -> str | None:
    named = os.environ.get("ORDO_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = chromium_path()
if CHROMIUM is None:
    MISSING = "chromium not found: install Debian's chromium to run the console's browser tests"
    if os.environ.get("ORDO_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{MISSING} (ORDO_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(MISSING, allow_module_level=True)


# Module scope: Playwright's sync API runs an event loop of its own, which must be gone before
# tests that run one (FastAPI's TestClient, Mangum) start.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


class Screen:
    """One browser tab on the console, with the loopback guard and the error log."""

    def __init__(self, page: Page, api: Api) -> None:
        self.page = page
        self.api = api
        self.off_loopback: list[str] = []
        self.errors: list[str] = []
        self.responses: list[tuple[str, int]] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/*", self._guard)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("response", lambda r: self.responses.append((urlsplit(r.url).path, r.status)))

    def _guard(self, route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            route.continue_()
        else:
            self.off_loopback.append(url)
            route.abort()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and not HANDLED.search(message.text):
            self.errors.append(message.text)

    def open(self, hash_path: str = "") -> None:
        self.page.goto(f"{self.api.url}/{hash_path}")

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.open()
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def go(self, name: str) -> None:
        self.page.get_by_role("link", name=name, exact=True).click()
        expect(self.page.get_by_role("heading", name=name, level=1)).to_be_visible()

    def shot(self, name: str, *, full_page: bool = True) -> None:
        folder = os.environ.get("ORDO_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)

    def check_clean(self) -> None:
        assert self.off_loopback == [], f"requests left loopback: {self.off_loopback}"
        assert self.errors == [], f"browser console errors: {self.errors}"


@pytest.fixture
def screen(browser: Browser, api: Api) -> Iterator[Screen]:
    if not api.local:
        pytest.skip("the console tests run against the local cloud")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = Screen(context.new_page(), api)
    yield tab
    try:
        tab.check_clean()
    finally:
        context.close()


def signed_up(api: Api) -> tuple[str, str]:
    """A new account made through the API, for tests about another screen."""
    return api.sign_up()


def job_row(screen: Screen, job_id: str) -> Any:
    return screen.page.locator(f"tr[data-job-id='{job_id}']")


# --- sign in ------------------------------------------------------------------------------


def test_register_then_sign_in_keeps_tokens_out_of_local_storage(screen: Screen) -> None:
    page = screen.page
    username = f"web-{secrets.token_hex(5)}"
    screen.open()
    screen.shot("sign-in")
    page.get_by_role("button", name="New here? Register").click()
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Register").click()
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible()
    assert page.evaluate("localStorage.length") == 0
    assert "refresh_token" in page.evaluate("sessionStorage.getItem('ordo.session')")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('ordo.session')") is None

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("wrong-" + PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Incorrect username or password")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Tasks")).to_be_visible()
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)


def test_sign_in_with_the_keyboard_alone(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    page = screen.page
    screen.open()
    page.get_by_label("Username").focus()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Tasks", level=1)).to_be_focused()
    page.keyboard.press("Tab")  # into the form: the focused control shows an outline
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


def expire_access_token(page: Page) -> None:
    """Spoil the stored access token, so the next request gets a 401 and refreshes."""
    page.evaluate(
        """() => {
          const session = JSON.parse(sessionStorage.getItem('ordo.session'));
          session.access_token = 'expired.' + session.access_token;
          sessionStorage.setItem('ordo.session', JSON.stringify(session));
        }"""
    )


def test_an_expired_access_token_is_refreshed_once(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    expire_access_token(page)
    page.reload()
    page.get_by_role("link", name="Documents").click()
    expect(page.get_by_role("heading", name="Documents", level=1)).to_be_visible()
    page.get_by_role("link", name="Tasks").click()
    expect(page.get_by_text("No jobs yet.")).to_be_visible()
    refreshes = [status for path, status in screen.responses if path == "/auth/refresh"]
    assert refreshes == [200]
    assert not page.evaluate("sessionStorage.getItem('ordo.session')").count("expired.")


def test_a_refresh_that_fails_for_a_reason_other_than_401_keeps_the_session(
    screen: Screen, api: Api
) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    expire_access_token(page)
    busy = json.dumps({"detail": "A service ordo depends on is busy or unreachable; please retry"})
    page.route(
        "**/auth/refresh",
        lambda route: route.fulfill(status=503, body=busy, content_type="application/json"),
    )
    page.reload()
    page.get_by_role("link", name="Tasks").click()
    expect(page.get_by_text("busy or unreachable")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert "refresh_token" in page.evaluate("sessionStorage.getItem('ordo.session')")
    screen.errors.remove(  # the 503 this test answers, which the browser logs
        "Failed to load resource: the server responded with a status of 503 (Service Unavailable)"
    )


# --- tasks and documents ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "data", "result"),
    [
        ("reverse", "hello", "olleh"),
        ("swap_pairs", "abcde", "badce"),
        ("repeat_by_position", "abc", "abbccc"),
    ],
)
def test_each_task_type_shows_its_result(
    screen: Screen, api: Api, task_type: str, data: str, result: str
) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    page.get_by_label("Task type").select_option(task_type)
    page.get_by_label("Data").fill(data)
    page.get_by_role("button", name="Submit").click()
    row = page.locator("tr[data-status='completed']")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(task_type)
    expect(row.locator("pre.result")).to_have_text(result)
    if task_type == "reverse":
        screen.shot("tasks")


def test_a_task_over_its_limit_is_refused_with_the_reason(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    page.get_by_label("Task type").select_option("repeat_by_position")
    page.get_by_label("Data").fill("x" * 301)
    page.get_by_role("button", name="Submit").click()
    expect(page.get_by_role("alert")).to_contain_text("repeat_by_position accepts at most 300")
    expect(page.get_by_text("No jobs yet.")).to_be_visible()


def test_an_invoice_upload_reaches_100_and_shows_its_result(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Documents")
    page = screen.page
    invoice = {"content": {"invoice_number": "INV-77", "amount": 99.5, "vendor": "Acme"}}
    page.get_by_label("Document type").select_option("invoice")
    page.get_by_label("JSON file").set_input_files(
        files=FilePayload(
            name="invoice.json", mimeType="application/json", buffer=json.dumps(invoice).encode()
        )
    )
    expect(page.get_by_label("Document JSON")).to_have_value(re.compile("INV-77"))
    page.get_by_role("button", name="Upload").click()
    progress = page.get_by_role("progressbar", name="Progress")
    expect(progress).to_have_attribute("value", "100")
    expect(page.get_by_text("100%")).to_be_visible()
    expect(page.locator("pre.result")).to_contain_text('"invoice_number": "INV-77"')
    expect(page.locator("pre.result")).to_contain_text('"vendor": "Acme"')
    screen.shot("documents")


def test_a_document_that_is_not_json_is_refused_before_it_is_sent(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Documents")
    page = screen.page
    page.get_by_label("Document JSON").fill("{not json")
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text(re.compile("^Error: The document is not valid JSON"))).to_be_visible()
    assert not [path for path, _ in screen.responses if path == "/upload"]


# --- cases --------------------------------------------------------------------------------


def choose_file(page: Page, button: str, name: str, mime: str) -> None:
    with page.expect_file_chooser() as chooser:
        page.get_by_role("button", name=button).click()
    chooser.value.set_files(files=FilePayload(name=name, mimeType=mime, buffer=b"%PDF-1.4 demo"))


def test_continue_creates_a_case_that_reaches_complete_with_its_steps(
    screen: Screen, api: Api
) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Cases")
    page = screen.page
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    choose_file(page, "Upload medical record", "medical-record.pdf", "application/pdf")
    expect(page.get_by_text("medical-record.pdf selected")).to_be_visible()
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()
    choose_file(page, "Upload guidelines", "guidelines.txt", "text/plain")
    screen.shot("cases-new")
    page.get_by_role("button", name="Continue").click()

    status = page.locator(".case-status")
    expect(status).to_have_text("Status: complete")
    steps = page.locator("ol.steps > li")
    assert steps.count() >= 1
    first = steps.first
    expect(first.get_by_role("heading", level=3)).to_contain_text("Step 1:")
    expect(first.get_by_role("list", name="Options").locator("li")).not_to_have_count(0)
    expect(first.get_by_text("(selected)")).to_have_count(1)
    for part in ("Reasoning", "Decision", "Evidence"):
        expect(first.get_by_role("heading", name=part, level=4)).to_be_visible()
    expect(page.get_by_role("heading", name="Summary")).to_be_visible()
    screen.shot("case")

    case_id = page.url.rsplit("/", 1)[1]
    with api.client(api.sign_in(username, PASSWORD)) as client:
        stored = client.get(f"/cases/{case_id}").json()
    assert stored["status"] == "complete"

    page.get_by_role("link", name="← All cases").click()
    page.get_by_label("Status filter").select_option("submitted")
    expect(page.get_by_text("No cases.")).to_be_visible()
    page.get_by_label("Status filter").select_option("complete")
    expect(page.get_by_role("link", name=case_id)).to_be_visible()


def test_a_case_file_that_is_not_pdf_or_text_is_refused(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Cases")
    page = screen.page
    choose_file(page, "Upload medical record", "scan.exe", "application/octet-stream")
    expect(page.get_by_text("Error: scan.exe is not a PDF or text file")).to_be_visible()
    choose_file(page, "Upload guidelines", "guidelines.txt", "text/plain")
    expect(page.get_by_role("button", name="Continue")).to_be_disabled()


# --- catalog ------------------------------------------------------------------------------


def seed_products(admin: httpx.Client, category: str) -> None:
    for name, price, stock in [
        ("Anvil", "30.00", 5),
        ("Bellows", "10.00", 0),
        ("Chisel", "20.00", 2),
    ]:
        body = {
            "name": f"{name} {category}",
            "price": price,
            "stock": stock,
            "category": category,
            "sku": f"{category}-{name}",
        }
        assert admin.post("/products", json=body).status_code == 201


def expect_names_in_table(page: Page, names: list[str]) -> None:
    """The table lists exactly these products, in this order (retried until the answer to the
    latest query is on screen: an earlier one may already show the same count)."""
    cells = page.locator("tbody tr td:first-child")
    expect(cells).to_have_text([re.compile(rf"^{name} ") for name in names])


def test_catalog_filters_sorts_and_searches(screen: Screen, api: Api, admin: httpx.Client) -> None:
    category = f"cat{secrets.token_hex(4)}"
    seed_products(admin, category)
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Catalog")
    page = screen.page
    expect(page.get_by_role("heading", name="Manage products")).to_have_count(0)
    page.get_by_label("Category").fill(category)
    page.get_by_label("Sort by").select_option("price")
    page.get_by_label("Order").select_option("asc")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("3 products")).to_be_visible()
    expect_names_in_table(page, ["Bellows", "Chisel", "Anvil"])

    page.get_by_label("In stock only").check()
    page.get_by_label("Minimum price").fill("15")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("2 products")).to_be_visible()
    expect_names_in_table(page, ["Chisel", "Anvil"])

    page.get_by_label("Page size").select_option("5")
    page.get_by_label("Search").fill("anvil")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("1 product", exact=True)).to_be_visible()
    expect_names_in_table(page, ["Anvil"])
    screen.shot("catalog")


def test_an_admin_creates_a_product_and_sees_a_field_error(
    screen: Screen, api: Api, admin: httpx.Client
) -> None:
    assert api.admin is not None
    screen.sign_in(*api.admin)
    screen.go("Catalog")
    page = screen.page
    form = page.get_by_role("form", name="New product")
    sku = f"web-{secrets.token_hex(4)}"
    form.get_by_label("Name").fill(f"Lamp {sku}")
    form.get_by_label("SKU").fill(sku)
    form.get_by_label("Price").fill("-5")
    form.get_by_role("button", name="Create product").click()
    price = form.get_by_label("Price")
    expect(price).to_have_attribute("aria-invalid", "true")
    expect(form.get_by_text("Error: Input should be greater than or equal to 0")).to_be_visible()
    screen.shot("catalog-admin")
    assert admin.get("/products/search", params={"q": sku}).json()["total"] == 0

    price.fill("12.50")
    form.get_by_role("button", name="Create product").click()
    expect(page.get_by_role("status")).to_contain_text(f"Lamp {sku} saved")
    found = admin.get("/products/search", params={"q": sku}).json()
    assert [item["price"] for item in found["items"]] == [12.5]

    page.get_by_label("Search").fill(sku)
    page.get_by_role("button", name="Apply").click()
    page.get_by_role("button", name=f"Edit Lamp {sku}").click()
    editor = page.get_by_role("form", name=f"Edit Lamp {sku}")
    editor.get_by_label("Price").fill("15")
    editor.get_by_role("button", name="Save product").click()
    expect(page.get_by_role("cell", name="15.00")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete Lamp {sku}").click()
    expect(page.get_by_text("No products match.")).to_be_visible()
    assert admin.get("/products/search", params={"q": sku}).json()["total"] == 0


# --- data ---------------------------------------------------------------------------------


def test_fetch_now_shows_the_outcome_and_the_posts(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    screen.go("Data")
    page = screen.page
    page.get_by_role("button", name="Fetch now").click()
    # Fetched now, or cached when another test fetched within the cache window
    expect(page.locator(".fetch-status")).to_contain_text(
        re.compile(r"completed (Fetched 7|Data fetched recently)")
    )
    expect(page.get_by_role("cell", name="post 1", exact=True)).to_be_visible()
    page.get_by_label("User ID").fill("1")  # post 1 is user 2's
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name="post 1", exact=True)).to_have_count(0)
    users = page.locator("tbody tr td:nth-child(2)").all_inner_texts()
    assert users
    assert set(users) == {"1"}
    screen.shot("data")


# --- admin --------------------------------------------------------------------------------


def test_an_admin_sees_the_lane_and_retries_a_failed_job(
    screen: Screen, api: Api, client: httpx.Client
) -> None:
    bad = client.post("/upload", json={"type": "invoice", "content": {"amount": 1e26}})
    assert bad.status_code == 200, bad.text
    job_id = bad.json()["job_id"]
    for _ in range(200):
        if client.get(f"/status/{job_id}").json()["status"] == "failed":
            break
        screen.page.wait_for_timeout(50)
    assert api.admin is not None
    screen.sign_in(*api.admin)
    screen.go("Admin")
    page = screen.page
    lane = page.get_by_role("region", name="Lane")
    for label in (
        "Pending",
        "Processing",
        "Oldest wait",
        "Dead letters",
        "Failed in the last hour",
    ):
        expect(lane.get_by_text(label, exact=True)).to_be_visible()
    expect(lane.get_by_text(re.compile("^Running: "))).to_be_visible()
    row = job_row(screen, job_id)
    expect(row).to_contain_text("amount must be within")
    screen.shot("admin")
    row.get_by_role("button", name=f"Retry job {job_id[:8]}").click()
    expect(row).to_contain_text("Retried as")
    with api.client(api.sign_in(*api.admin)) as admin:
        listed = admin.get("/admin/jobs", params={"status": "failed", "limit": 100}).json()
    retried = next(job for job in listed["items"] if job["job_id"] == job_id)
    assert retried["retried_as"]


def test_an_admin_changes_a_role_and_deactivates_a_user(screen: Screen, api: Api) -> None:
    username, _ = signed_up(api)
    assert api.admin is not None
    screen.sign_in(*api.admin)
    screen.go("Admin")
    page = screen.page
    accounts = page.get_by_role("region", name="Accounts").locator("tbody tr")
    expect(accounts).not_to_have_count(0)
    while page.get_by_role("cell", name=username, exact=True).count() == 0:
        shown = accounts.count()
        page.get_by_role("button", name="More users").click()
        expect(accounts).not_to_have_count(shown)
    row = page.locator("tr", has=page.get_by_role("cell", name=username, exact=True))
    row.get_by_role("button", name=f"Make {username} admin").click()
    expect(row.get_by_role("cell", name="admin", exact=True)).to_be_visible()
    row.get_by_role("button", name=f"Deactivate {username}").click()
    expect(row.get_by_role("cell", name="deactivated")).to_be_visible()
    refused = httpx.post(f"{api.url}/auth/login", data={"username": username, "password": PASSWORD})
    assert refused.status_code == 401


def test_a_user_has_no_admin_link_and_gets_no_admin_data(screen: Screen, api: Api) -> None:
    username, token = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)
    screen.open("#/admin")
    expect(page.get_by_text("This page is for admins only.")).to_be_visible()
    expect(page.get_by_text("Dead letters")).to_have_count(0)
    admin_calls = [status for path, status in screen.responses if path.startswith("/admin")]
    assert all(status == 403 for status in admin_calls)
    with api.client(token) as client:
        assert client.get("/admin/lane").status_code == 403


# --- live updates -------------------------------------------------------------------------


def requests_to(screen: Screen, path: str) -> int:
    return sum(1 for seen, _ in screen.responses if seen == path)


def test_polling_stops_for_finished_jobs_and_while_the_tab_is_hidden(
    screen: Screen, api: Api
) -> None:
    username, _ = signed_up(api)
    screen.sign_in(username)
    page = screen.page
    page.get_by_label("Data").fill("abc")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("tr[data-status='completed']")).to_have_count(1)
    page.wait_for_timeout(300)  # the poll that saw it finish
    settled = requests_to(screen, "/jobs")
    page.wait_for_timeout(1500)  # five polls' worth at the fastest pace
    assert requests_to(screen, "/jobs") == settled

    page.get_by_role("button", name="Sign out").click()
    assert api.admin is not None
    screen.sign_in(*api.admin)
    screen.go("Admin")
    expect(page.get_by_text("Dead letters")).to_be_visible()
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {value: true, configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    hidden = requests_to(screen, "/admin/lane")
    page.wait_for_timeout(2500)  # more than two polls at the lane's fastest pace (1 s)
    assert requests_to(screen, "/admin/lane") == hidden
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {value: false, configurable: true});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    page.wait_for_timeout(500)
    assert requests_to(screen, "/admin/lane") > hidden


# --- layout, docs -------------------------------------------------------------------------


def test_every_screen_fits_a_360_px_phone(browser: Browser, api: Api) -> None:
    if not api.local:
        pytest.skip("the console tests run against the local cloud")
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    tab = Screen(context.new_page(), api)
    try:
        assert api.admin is not None
        tab.sign_in(*api.admin)
        for name in ("Tasks", "Documents", "Cases", "Catalog", "Data", "Admin"):
            tab.go(name)
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{name} is {width} px wide"
            if name == "Tasks":
                tab.shot("phone-tasks")
        tab.check_clean()
    finally:
        context.close()


@pytest.mark.parametrize(
    ("path", "ready"),
    [("/docs", ".swagger-ui .opblock"), ("/redoc", "[role=search], .menu-content")],
)
def test_the_api_docs_work_offline(screen: Screen, api: Api, path: str, ready: str) -> None:
    page = screen.page
    page.goto(f"{api.url}{path}")
    expect(page.locator(ready).first).to_be_visible()
    expect(page.get_by_text("/tasks/{task_id}").first).to_be_attached()
    # ReDoc's footer logo is on cdn.redoc.ly: the page's CSP refuses it before it leaves.
    refused = [error for error in screen.errors if "cdn.redoc.ly" in error]
    screen.errors = [error for error in screen.errors if error not in refused]
    assert len(refused) <= 1
    screen.shot(path.strip("/"), full_page=False)
