"""The gallery page at / in headless Chromium, driven through the Chrome DevTools Protocol with
real mouse clicks and key presses: sign in, upload, browse, filter, view, step through, download,
edit and delete, under the page's strict CSP. One Chromium serves the module, a tab per test."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import blurhash
import httpx
import pytest
from PIL import Image

from adapters.secret_file import load_or_create_secret
from entrypoints.http.auth import TokenAuthority
from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.big_images import padded_png
from tests.support.sample_images import image_bytes

websocket = pytest.importorskip("websocket", reason="websocket-client is in the dev extra")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TIMEOUT = 30.0
"""Generous: a loaded two-core machine starts Chromium and makes thumbnails slowly."""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine (apt-get install chromium)"
)

T = TypeVar("T")

MiB = 1024 * 1024

KEY_CODES = {"ArrowLeft": 37, "ArrowRight": 39, "Escape": 27}
"""The Windows virtual key codes Chromium needs to act on a key as a keyboard would."""


class DevTools:
    """A tab of a Chromium, spoken to over the DevTools websocket; keeps every event."""

    def __init__(self, browser_url: str) -> None:
        # Chromium refuses a websocket whose Origin it was not told to allow; send none.
        self.socket = websocket.create_connection(
            browser_url, timeout=TIMEOUT, suppress_origin=True
        )
        self.events: list[dict[str, Any]] = []
        self.session_id: str | None = None
        self.target_id: str | None = None
        self._next_id = 0

    def call(self, method: str, *, browser: bool = False, **params: Any) -> dict[str, Any]:
        """``method`` on the open tab, or on the whole browser if ``browser``."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session_id is not None and not browser:
            message["sessionId"] = self.session_id
        self.socket.send(json.dumps(message))
        while True:
            answer = json.loads(self.socket.recv())
            if answer.get("id") != self._next_id:
                self.events.append(answer)
                continue
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            result: dict[str, Any] = answer["result"]
            return result

    def open_page(self) -> None:
        self.events.clear()
        self.target_id = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session_id = self.call("Target.attachToTarget", targetId=self.target_id, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        # A fixed size, so that what fits on screen (the grid's first page) is the same anywhere.
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )
        # Injected by DevTools, so the page's CSP does not apply to it.
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            source="document.addEventListener('securitypolicyviolation', (e) => "
            "console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));",
        )

    def close_page(self) -> None:
        if self.target_id is not None:
            self.call("Target.closeTarget", browser=True, targetId=self.target_id)
        self.session_id = self.target_id = None

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def set_files(self, selector: str, paths: list[Path]) -> None:
        element = self.call(
            "Runtime.evaluate", expression=f"document.querySelector({json.dumps(selector)})"
        )["result"]
        self.call(
            "DOM.setFileInputFiles",
            files=[str(path) for path in paths],
            objectId=element["objectId"],
        )

    def wait_for(self, expression: str, what: str) -> Any:
        """The value of ``expression`` once it is truthy."""
        return poll(lambda: self.evaluate(expression), what)

    def visible(self, selector: str) -> bool:
        return bool(
            self.evaluate(
                f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                " return Boolean(e && e.getClientRects().length); })()"
            )
        )

    def text(self, selector: str) -> str:
        return str(self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent"))

    def click(self, selector: str) -> None:
        """A left click of the mouse in the middle of the element, as a person makes it: it
        fails if the element is hidden or something else covers it."""
        spot = self.evaluate(
            f"""(() => {{
            const element = document.querySelector({json.dumps(selector)});
            if (!element) return null;
            element.scrollIntoView({{block: "center", inline: "center"}});
            const box = element.getBoundingClientRect();
            const x = box.left + box.width / 2, y = box.top + box.height / 2;
            const hit = document.elementFromPoint(x, y);
            return {{x, y, shown: box.width > 0 && box.height > 0,
                     reachable: Boolean(hit && element.contains(hit))}};
            }})()"""
        )
        assert spot is not None, f"no {selector} to click"
        assert spot["shown"], f"{selector} is not shown"
        assert spot["reachable"], f"something covers {selector}"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=spot["x"],
                y=spot["y"],
                button="none" if kind == "mouseMoved" else "left",
                clickCount=0 if kind == "mouseMoved" else 1,
            )

    def type_into(self, selector: str, text: str) -> None:
        """Clicks the field, selects what it holds and types ``text`` over it."""
        self.click(selector)
        # The click's focus may land after the mouse event returns: focus the field itself.
        self.evaluate(
            f"(field => {{ field.focus(); field.select(); }})"
            f"(document.querySelector({json.dumps(selector)}))"
        )
        self.call("Input.insertText", text=text)

    def press(self, key: str) -> None:
        code = KEY_CODES[key]
        for kind in ("rawKeyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=key,
                windowsVirtualKeyCode=code,
                nativeVirtualKeyCode=code,
            )

    def problems(self, *expected: str) -> list[dict[str, Any]]:
        """JS errors, console errors and log errors (CSP violations among them) seen so far,
        but for those whose text holds one of ``expected`` (the refusals a test provokes)."""
        self.evaluate("0")  # a round trip, so that events sent before now are read
        return [
            event
            for event in self.events
            if _is_a_problem(event) and not any(text in json.dumps(event) for text in expected)
        ]


def _is_a_problem(event: dict[str, Any]) -> bool:
    method, params = event.get("method"), event.get("params", {})
    if method == "Runtime.consoleAPICalled":
        return params.get("type") in ("error", "assert")
    if method == "Log.entryAdded":
        return bool(params["entry"]["level"] == "error")
    return method == "Runtime.exceptionThrown"


def poll(probe: Callable[[], T], what: str, timeout: float = TIMEOUT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} (last value {value!r})")
        time.sleep(0.1)


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[DevTools]:
    assert CHROMIUM is not None
    log = profile.with_name("chromium.log")
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        pattern = re.compile(r"DevTools listening on (ws://\S+)")
        found = poll(lambda: pattern.search(log.read_text(errors="replace")), "DevTools", 60)
        devtools = DevTools(found.group(1))
        try:
            yield devtools
        finally:
            devtools.socket.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevTools]:
    """One Chromium for the module's tests: starting it is most of a browser test's cost."""
    with chromium(tmp_path_factory.mktemp("chromium") / "profile") as devtools:
        yield devtools


@pytest.fixture
def page(browser: DevTools) -> Iterator[DevTools]:
    """A fresh tab: its own session storage, so no test finds another's token."""
    browser.open_page()
    yield browser
    browser.close_page()


CARDS = "Array.from(document.querySelectorAll('#grid .card'))"
SHOWN_THUMBNAILS = f"""{CARDS}.filter((card) => {{
    const img = card.querySelector('img');
    return !img.hidden && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
}}).length"""
CARD_TITLES = f"{CARDS}.map((card) => card.querySelector('.caption').textContent)"
VIEW_DETAILS = """(() => {
    const terms = document.querySelectorAll('#view-details dt');
    return Object.fromEntries(Array.from(terms, (dt) => [dt.textContent,
                                                        dt.nextElementSibling.textContent]));
})()"""
VIEWER_OPEN = "document.getElementById('image-view').open"
FULL_IMAGE = """(() => {
    const img = document.getElementById('view-image');
    return img.dataset.full === 'true' && img.src.startsWith('blob:') && img.complete
        && [document.getElementById('view-title').textContent, img.naturalWidth,
            img.naturalHeight];
})()"""
"""The viewer's title and the size of the image it shows, once that is the original."""
TOKEN_KEPT = "sessionStorage.getItem('imagecore.token')"


def fill(field_id: str, value: str) -> str:
    return f"document.getElementById({json.dumps(field_id)}).value = {json.dumps(value)};"


def card(title: str) -> str:
    """The selector of the grid's card with this caption (titles are unique in these tests)."""
    return f"#grid .card[data-title={json.dumps(title)}] button"


MARK_CARDS = f"""{CARDS}.forEach((card) =>
    card.dataset.title = card.querySelector('.caption').textContent)"""
"""Names each card by its caption, for ``card``: the page itself has no use for it."""


def sign_in(page: DevTools, url: str, token: str) -> None:
    page.call("Page.navigate", url=f"{url}/")
    page.wait_for("document.readyState === 'complete'", "the page to load")
    page.type_into("#token-input", token)
    page.click("#sign-in button[type=submit]")
    page.wait_for("!document.getElementById('gallery').hidden", "the signed-in gallery")


def test_gallery_signs_in_uploads_filters_shows_and_deletes_in_a_browser(
    page: DevTools, tmp_path: Path
) -> None:
    harbour, woods = tmp_path / "harbour.png", tmp_path / "woods.png"
    harbour.write_bytes(image_bytes("image/png", 40, 30))
    woods.write_bytes(image_bytes("image/png", 20, 50))

    with running_server("filesystem", tmp_path) as server:
        token = TokenAuthority(load_or_create_secret(server.data_dir)).issue("gallery-user")
        home = httpx.get(f"{server.url}/", timeout=TIMEOUT)
        assert home.status_code == 200
        assert "script-src 'self';" in home.headers["content-security-policy"]

        sign_in(page, server.url, token)
        assert page.evaluate(TOKEN_KEPT) == token

        # Two batches, each with its own title and tags, through the file picker.
        for path, title, tags, visibility in [
            (harbour, "Harbour", "sea, boat", "public"),
            (woods, "Woods", "forest", "private"),
        ]:
            done = page.evaluate("document.querySelectorAll('#upload-list li').length") + 1
            page.evaluate(
                fill("upload-title", title) + fill("upload-tags", tags)
                + fill("upload-visibility", visibility)
            )  # fmt: skip
            page.set_files("#file-input", [path])
            page.wait_for(
                f"Array.from(document.querySelectorAll('#upload-list li')).filter((row) =>"
                f" row.lastChild.textContent === 'uploaded').length === {done}",
                f"the upload of {path.name}",
            )
        page.wait_for(f"{SHOWN_THUMBNAILS} === 2", "both thumbnails in the grid")
        assert sorted(page.evaluate(CARD_TITLES)) == ["Harbour", "Woods"]
        alt_texts = page.evaluate(f"{CARDS}.map((card) => card.querySelector('img').alt)")
        assert sorted(alt_texts) == ["Harbour", "Woods"]

        page.type_into("#filter-tag", "boat")
        page.click("#filter-form button[type=submit]")
        page.wait_for(
            f"JSON.stringify({CARD_TITLES}) === '[\"Harbour\"]' && {SHOWN_THUMBNAILS} === 1",
            "only the image tagged boat",
        )
        image_id = page.evaluate(f"{CARDS}[0].dataset.imageId")

        page.click("#grid .card button")
        page.wait_for(VIEWER_OPEN, "the image view")
        details = page.wait_for(f"Object.keys({VIEW_DETAILS}).length && {VIEW_DETAILS}", "details")
        assert page.text("#view-title") == "Harbour"
        assert details["Title"] == "Harbour"
        assert details["Tags"] == "sea, boat"
        assert details["Visibility"] == "public"
        assert details["Dimensions"] == "40 \N{MULTIPLICATION SIGN} 30"
        assert f"{harbour.stat().st_size} bytes" in details["Size"]
        assert json.loads(details["Metadata"]) == {}
        assert details["Created"]
        assert details["Updated"]
        assert details["File"] == "harbour.png (image/png)"

        # Delete asks first; cancelling keeps the image.
        page.click("#view-delete")
        page.wait_for("!document.getElementById('view-confirm').hidden", "the question")
        assert "Harbour" in page.text("#view-confirm-text")
        page.click("#view-confirm-cancel")
        assert not page.visible("#view-confirm")
        assert page.evaluate(f"{VIEWER_OPEN} && {CARDS}.length") == 1
        auth = {"Authorization": f"Bearer {token}"}
        kept = httpx.get(f"{server.url}/images/{image_id}", headers=auth, timeout=TIMEOUT)
        assert kept.status_code == 200, kept.text

        page.click("#view-delete")
        page.click("#view-confirm-delete")
        page.wait_for(
            f"!{VIEWER_OPEN} && {CARDS}.length === 0", "the deleted image to leave the grid"
        )
        gone = httpx.get(f"{server.url}/images/{image_id}", headers=auth, timeout=TIMEOUT)
        assert gone.status_code == 404, gone.text

        assert not page.visible("#error"), page.text("#error")
        assert page.problems() == []


def test_gallery_loads_the_next_page_at_the_end_of_the_grid_and_filters_by_date(
    page: DevTools, tmp_path: Path
) -> None:
    with running_server("filesystem", tmp_path) as server:
        token = TokenAuthority(load_or_create_secret(server.data_dir)).issue("scroller")
        for number in range(30):  # more than one page of the gallery's 24
            uploaded = httpx.post(
                f"{server.url}/images",
                headers={"Authorization": f"Bearer {token}"},
                files={"file": ("photo.png", image_bytes(), "image/png")},
                data={"title": f"photo {number}"},
                timeout=TIMEOUT,
            )
            assert uploaded.status_code == 201, uploaded.text
        sign_in(page, server.url, token)
        page.wait_for(f"{CARDS}.length === 24", "the first page")

        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for(f"{CARDS}.length === 30", "the second page after scrolling")

        page.evaluate(fill("filter-end", "2001-01-01"))
        page.click("#filter-form button[type=submit]")
        page.wait_for("document.getElementById('grid-status').textContent === 'No images.'",
                      "an empty grid for a range before every upload")  # fmt: skip
        assert page.evaluate(f"{CARDS}.length") == 0
        page.click("#filter-clear")
        page.wait_for(f"{CARDS}.length === 24", "the first page again")
        assert page.problems() == []


def test_gallery_takes_only_a_valid_token_offers_owner_actions_to_the_owner_and_filters(
    page: DevTools, tmp_path: Path
) -> None:
    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        alice, bob = "alice", "bob"
        for user, title, content_type, tags, visibility in [
            (alice, "Sunset", "image/jpeg", "beach, sunset", "private"),
            (alice, "Sunrise", "image/png", "beach", "public"),
            (alice, "Harbour", "image/png", "sea", "private"),
            (bob, "Boat", "image/webp", "beach, boat", "public"),
            (bob, "Bob's secret", "image/png", "beach", "private"),
        ]:
            api.uploaded(
                user,
                data=image_bytes(content_type, 32, 24),
                filename=f"{title}.img",
                title=title,
                tags=tags,
                visibility=visibility,
            )
        page.call("Page.navigate", url=f"{server.url}/")
        page.wait_for("document.readyState === 'complete'", "the page to load")

        # A well-formed token the server did not sign: refused at the form, nothing kept.
        forged = TokenAuthority(b"not this server's secret, 32 byte").issue(alice)
        page.type_into("#token-input", forged)
        page.click("#sign-in button[type=submit]")
        refusal = page.wait_for(
            "!document.getElementById('sign-in-error').hidden"
            " && document.getElementById('sign-in-error').textContent",
            "the refusal at the sign-in form",
        )
        assert "not accepted" in refusal
        assert "not valid for this server" in refusal
        assert page.evaluate(TOKEN_KEPT) is None
        assert not page.visible("#gallery")
        assert not page.visible("#signed-in")

        page.type_into("#token-input", api.token(alice))
        page.click("#sign-in button[type=submit]")
        page.wait_for("!document.getElementById('gallery').hidden", "the signed-in gallery")
        assert page.text("#signed-in-user") == alice
        assert not page.visible("#sign-in-error")
        assert page.evaluate(TOKEN_KEPT) == api.token(alice)

        everything = ["Boat", "Harbour", "Sunrise", "Sunset"]  # not Bob's private one
        page.wait_for(f"{SHOWN_THUMBNAILS} === 4", "the four images alice may see")
        assert sorted(page.evaluate(CARD_TITLES)) == everything
        page.evaluate(MARK_CARDS)
        owners = page.evaluate(f"{CARDS}.map((card) => card.querySelector('.owner').textContent)")
        assert sorted(owners) == ["by bob", "yours, private", "yours, private", "yours, public"]

        # Someone else's image: no edit, no delete.
        page.click(card("Boat"))
        page.wait_for(f"{FULL_IMAGE}", "Boat in the viewer")
        assert not page.visible("#view-edit")
        assert not page.visible("#view-delete")
        assert page.visible("#view-download")
        page.press("Escape")
        page.wait_for(f"!{VIEWER_OPEN}", "Escape to close the viewer")
        # One's own: both.
        page.click(card("Harbour"))
        page.wait_for(f"{FULL_IMAGE}", "Harbour in the viewer")
        assert page.visible("#view-edit")
        assert page.visible("#view-delete")
        page.click("#view-close")
        page.wait_for(f"!{VIEWER_OPEN}", "the close button to close the viewer")

        def filtered(change: Callable[[], None], titles: list[str]) -> None:
            change()
            page.click("#filter-form button[type=submit]")
            shown = f"!grid.loading && {CARD_TITLES}.sort()"
            poll(lambda: page.evaluate(shown) == titles, f"the grid to show {titles}")

        filtered(lambda: page.click("#filter-mine"), ["Harbour", "Sunrise", "Sunset"])
        filtered(lambda: page.type_into("#filter-title", "SUN"), ["Sunrise", "Sunset"])
        filtered(lambda: page.evaluate(fill("filter-type", "image/png")), ["Sunrise"])
        page.click("#filter-clear")
        page.wait_for(f"{CARDS}.length === 4", "every image again")
        filtered(lambda: page.type_into("#filter-tag", "boat, BEACH"), ["Boat"])
        filtered(lambda: page.type_into("#filter-tag", "beach"), ["Boat", "Sunrise", "Sunset"])
        filtered(lambda: page.evaluate(fill("filter-type", "image/jpeg")), ["Sunset"])

        page.click("#sign-out")
        page.wait_for("!document.getElementById('sign-in').hidden", "the sign-in form")
        assert page.evaluate(TOKEN_KEPT) is None
        assert page.evaluate(f"{CARDS}.length") == 0
        assert page.problems("status of 401") == []


def test_gallery_viewer_shows_the_full_size_steps_with_the_keys_downloads_and_edits(
    page: DevTools, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    originals = {  # uploaded in this order: the grid shows the newest first
        "First": ("first.png", image_bytes("image/png", 640, 480)),
        "Second": ("second.jpg", image_bytes("image/jpeg", 300, 500)),
        "Third": ("third.png", image_bytes("image/png", 700, 300)),
    }
    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        user = "viewer"
        ids = {
            title: api.uploaded(user, data=data, filename=name, title=title)["image_id"]
            for title, (name, data) in originals.items()
        }
        page.call(
            "Browser.setDownloadBehavior", browser=True, behavior="allow",
            downloadPath=str(downloads),
        )  # fmt: skip
        sign_in(page, server.url, api.token(user))
        page.wait_for(f"{SHOWN_THUMBNAILS} === 3", "the three thumbnails")
        assert page.evaluate(CARD_TITLES) == ["Third", "Second", "First"]

        # The full size, not the 256 px thumbnail's: the preview, as large as the original
        # below 1,440 px.
        page.click("#grid .card button")
        assert page.wait_for(FULL_IMAGE, "the full-size image") == ["Third", 700, 300]
        assert page.text("#view-position") == "1 of 3"
        assert page.evaluate("document.getElementById('view-previous').disabled")
        page.press("ArrowRight")
        assert page.wait_for(FULL_IMAGE, "the second image") == ["Second", 300, 500]
        page.press("ArrowRight")
        assert page.wait_for(FULL_IMAGE, "the third image") == ["First", 640, 480]
        assert page.text("#view-position") == "3 of 3"
        assert page.evaluate("document.getElementById('view-next').disabled")
        page.press("ArrowRight")  # the last one: stays
        page.press("ArrowLeft")
        assert page.wait_for(FULL_IMAGE, "the second image again") == ["Second", 300, 500]
        page.click("#view-previous")
        assert page.wait_for(FULL_IMAGE, "the first image again") == ["Third", 700, 300]

        page.click("#view-download")
        saved = poll(
            lambda: [path for path in downloads.iterdir() if path.suffix == ".png"],
            "the download",
        )
        assert [path.name for path in saved] == ["third.png"]
        assert poll(lambda: saved[0].read_bytes() == originals["Third"][1], "the whole file")

        # Edit in place: the change is sent against the version shown.
        page.click("#view-edit")
        assert page.evaluate("document.activeElement.id") == "edit-title"
        page.type_into("#edit-title", "Third, renamed")
        page.type_into("#edit-tags", "night, city")
        page.evaluate(fill("edit-visibility", "public"))
        page.click("#edit-form button[type=submit]")
        page.wait_for("document.getElementById('view-status').textContent === 'Saved.'", "saving")
        assert page.text("#view-title") == "Third, renamed"
        assert page.evaluate(f"{VIEW_DETAILS}")["Tags"] == "night, city"
        assert page.evaluate(CARD_TITLES)[0] == "Third, renamed"
        stored = api.client.get(f"/images/{ids['Third']}", headers=api.auth(user)).json()
        assert (stored["title"], stored["tags"], stored["visibility"]) == (
            "Third, renamed", ["night", "city"], "public"
        )  # fmt: skip

        # Someone changes it while the form is open: the save is refused, and said so in the
        # viewer, with the way out.
        page.click("#view-edit")
        elsewhere = api.client.patch(
            f"/images/{ids['Third']}", headers=api.auth(user), json={"description": "elsewhere"}
        )
        assert elsewhere.status_code == 200, elsewhere.text
        page.type_into("#edit-title", "Mine wins?")
        page.click("#edit-form button[type=submit]")
        conflict = page.wait_for(
            "!document.getElementById('view-error').hidden"
            " && document.getElementById('view-error').textContent",
            "the conflict message",
        )
        assert "someone changed this image" in conflict
        assert page.evaluate("document.getElementById('view-error').closest('dialog') !== null")
        assert not page.visible("#error")
        stored = api.client.get(f"/images/{ids['Third']}", headers=api.auth(user)).json()
        assert (stored["title"], stored["description"]) == ("Third, renamed", "elsewhere")

        page.click("#view-reload")
        page.wait_for(
            "document.getElementById('edit-description').value === 'elsewhere'"
            " && document.getElementById('view-error').hidden",
            "the current version in the form",
        )
        page.type_into("#edit-title", "Mine, after all")
        page.click("#edit-form button[type=submit]")
        page.wait_for("document.getElementById('view-status').textContent === 'Saved.'", "saving")
        stored = api.client.get(f"/images/{ids['Third']}", headers=api.auth(user)).json()
        assert (stored["title"], stored["description"]) == ("Mine, after all", "elsewhere")

        page.press("Escape")
        page.wait_for(f"!{VIEWER_OPEN}", "Escape to close the viewer")
        assert page.problems("status of 412") == []


UPLOAD_ROWS = "Array.from(document.querySelectorAll('#upload-list li'))"
FINISHED_UPLOAD = f"""{UPLOAD_ROWS}.map((row) => row.lastChild.textContent)
    .find((text) => text.startsWith('uploaded') || text === 'failed')"""
STORED_UPLOADS = """Object.keys(localStorage).filter((key) => key.startsWith('tus::'))
    .map((key) => [key, JSON.parse(localStorage.getItem(key)).uploadUrl])"""
"""The upload URLs tus-js-client keeps to resume from, by key."""
TUS = {"Tus-Resumable": "1.0.0"}


def hold_the_second_chunk(page: DevTools) -> None:
    """Lets the page's requests to /files/ through until it sends its second chunk, and holds
    that one: the server has the first chunk whole, and nothing of the second."""
    let_through: set[str] = set()
    chunks = 0

    def next_paused() -> dict[str, Any] | None:
        page.evaluate("0")  # a round trip, so that the events sent before now are read
        return next(
            (
                event["params"]
                for event in page.events
                if event.get("method") == "Fetch.requestPaused"
                and event["params"]["requestId"] not in let_through
            ),
            None,
        )

    while True:
        paused = poll(next_paused, "the page's next request to /files/")
        if paused["request"]["method"] == "PATCH":
            chunks += 1
            if chunks == 2:
                return
        let_through.add(paused["requestId"])
        page.call("Fetch.continueRequest", requestId=paused["requestId"])


def reload_during_the_second_chunk(page: DevTools, path: Path) -> tuple[str, str]:
    """Picks ``path`` and reloads the page while its second chunk waits to be sent, as a person
    who reloads mid-upload does: the key and URL of the upload the page kept to resume."""
    page.call("Network.enable", maxPostDataSize=0)
    page.call("Fetch.enable", patterns=[{"urlPattern": "*/files/*"}])
    page.set_files("#file-input", [path])
    hold_the_second_chunk(page)
    [(key, upload_url)] = page.evaluate(STORED_UPLOADS)
    page.call("Page.reload")
    page.wait_for(
        "document.readyState === 'complete' && !document.getElementById('gallery').hidden",
        "the signed-in gallery after the reload",
    )
    page.call("Fetch.disable")
    return key, upload_url


def header(headers: dict[str, str], name: str) -> str:
    return next(value for key, value in headers.items() if key.lower() == name.lower())


def requests_sent(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The requests among ``events``, by request id."""
    return {
        event["params"]["requestId"]: event["params"]["request"]
        for event in events
        if event.get("method") == "Network.requestWillBeSent"
    }


def offsets_of_patches(events: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(the Upload-Offset the page sent, the one the server answered) of each PATCH answered
    among ``events``: the difference is what the server took of it."""
    sent = requests_sent(events)
    return [
        (
            int(header(request["headers"], "Upload-Offset")),
            int(header(event["params"]["response"]["headers"], "Upload-Offset")),
        )
        for event in events
        if event.get("method") == "Network.responseReceived"
        and (request := sent.get(event["params"]["requestId"]))
        and request["method"] == "PATCH"
    ]


def test_gallery_resumes_a_big_upload_after_a_reload_sending_only_the_rest(
    page: DevTools, tmp_path: Path
) -> None:
    panorama = tmp_path / "panorama.png"
    size = 12 * MiB  # above the gallery's threshold for resumable uploads
    data = padded_png(size)
    panorama.write_bytes(data)

    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        user = "resumer"
        sign_in(page, server.url, api.token(user))
        page.evaluate(
            fill("upload-title", "Panorama") + fill("upload-tags", "wide, sky")
            + fill("upload-visibility", "public")
        )  # fmt: skip
        key, upload_url = reload_during_the_second_chunk(page, panorama)
        assert f"::{user}:" in key  # kept for this user only
        held = api.client.head(upload_url, headers={**api.auth(user), **TUS})
        assert held.status_code == 200, held.text
        held_offset = int(held.headers["upload-offset"])
        assert 0 < held_offset < size

        after_reload = len(page.events)
        page.set_files("#file-input", [panorama])
        outcome = page.wait_for(FINISHED_UPLOAD, "the upload picked again to finish")
        patches = offsets_of_patches(page.events[after_reload:])
        assert sum(end - start for start, end in patches) == size - held_offset
        assert patches[0][0] == held_offset  # the first chunk sent after the reload
        assert outcome == f"uploaded (resumed from {100 * held_offset // size}%)"
        sent = requests_sent(page.events[after_reload:]).values()
        assert "POST" not in [request["method"] for request in sent]  # no second upload

        page.wait_for(f"{CARD_TITLES}.includes('Panorama')", "the image in the grid")
        [image] = api.list_all(user, user_id=user)
        assert image["size"] == size
        assert image["sha256"] == hashlib.sha256(data).hexdigest()
        assert (image["title"], image["tags"], image["visibility"]) == (
            "Panorama",
            ["wide", "sky"],
            "public",
        )
        assert page.evaluate(STORED_UPLOADS) == []  # forgotten once done
        assert not page.visible("#error"), page.text("#error")
        assert page.problems() == []


def test_gallery_never_resumes_an_upload_of_another_user(page: DevTools, tmp_path: Path) -> None:
    shared = tmp_path / "shared.png"
    size = 9 * MiB
    data = padded_png(size)
    shared.write_bytes(data)

    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        sign_in(page, server.url, api.token("first"))
        key, upload_url = reload_during_the_second_chunk(page, shared)
        page.click("#sign-out")
        sign_in(page, server.url, api.token("second"))

        after_switch = len(page.events)
        page.set_files("#file-input", [shared])
        assert page.wait_for(FINISHED_UPLOAD, "the second user's upload") == "uploaded"
        sent = requests_sent(page.events[after_switch:]).values()
        assert upload_url not in [request["url"] for request in sent]
        patches = offsets_of_patches(page.events[after_switch:])
        assert sum(end - start for start, end in patches) == size  # all of it, as a new upload

        [image] = api.list_all("second", user_id="second")
        assert image["sha256"] == hashlib.sha256(data).hexdigest()
        # The first user's upload waits for them, untouched, and the page still knows it.
        held = api.client.head(upload_url, headers={**api.auth("first"), **TUS})
        assert 0 < int(held.headers["upload-offset"]) < size
        assert page.evaluate(STORED_UPLOADS) == [[key, upload_url]]
        assert page.problems() == []


def test_gallery_sends_a_big_file_in_one_request_where_the_server_has_no_tus(
    page: DevTools, tmp_path: Path
) -> None:
    big = tmp_path / "big.png"
    size = 9 * MiB
    data = padded_png(size)
    big.write_bytes(data)

    # On aws the bytes go to S3 and the server keeps no partial uploads: /files/ is not there.
    with running_server("aws", tmp_path, IMAGECORE_MAX_UPLOAD_BYTES=str(16 * MiB)) as server:
        api = Api(server)
        sign_in(page, server.url, api.token("plain"))
        page.call("Network.enable", maxPostDataSize=0)
        page.set_files("#file-input", [big])
        assert page.wait_for(FINISHED_UPLOAD, "the upload") == "uploaded"
        sent = requests_sent(page.events).values()
        assert [
            (request["method"], request["url"]) for request in sent if "/files/" in request["url"]
        ] == [("OPTIONS", f"{server.url}/files/")]
        [image] = api.list_all("plain", user_id="plain")
        assert image["sha256"] == hashlib.sha256(data).hexdigest()
        assert page.problems("status of 404") == []  # the answer to the probe of /files/


def test_gallery_shows_why_the_server_refused_a_big_upload(page: DevTools, tmp_path: Path) -> None:
    notes = tmp_path / "notes.png"  # named like an image, but not one
    notes.write_bytes(b"%PDF-1.7 " + bytes(9 * MiB))

    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        sign_in(page, server.url, api.token("writer"))
        page.set_files("#file-input", [notes])
        assert page.wait_for(FINISHED_UPLOAD, "the refusal") == "failed"
        error = page.wait_for(
            "!document.getElementById('error').hidden"
            " && document.getElementById('error').textContent",
            "the error message",
        )
        assert error.startswith("UnsupportedMediaType: ")
        assert "(request " in error
        assert api.list_all("writer", user_id="writer") == []
        assert page.problems("status of 415") == []


RENDITION_ACCEPT = "image/avif,image/webp,image/jpeg"
CARD_LOOKS = """((card) => {
    const frame = card.querySelector('.frame'), blur = card.querySelector('.blur');
    const box = frame.getBoundingClientRect();
    let mean = null;
    if (!blur.hidden) {
        const data = blur.getContext('2d').getImageData(0, 0, blur.width, blur.height).data;
        mean = [0, 1, 2].map((channel) => {
            let sum = 0;
            for (let i = channel; i < data.length; i += 4) sum += data[i];
            return Math.round(sum / (data.length / 4));
        });
    }
    return {ratio: box.width / box.height, background: getComputedStyle(frame).backgroundColor,
            blurMean: mean, thumbnailShown: !card.querySelector('img').hidden,
            pendingShown: !card.querySelector('.placeholder').hidden};
})"""
"""What a card shows of its image: the frame's shape and colour, the mean of its blurhash
canvas (null if none is drawn), and whether the thumbnail or the pending text is shown."""


def two_tone_jpeg(width: int, height: int) -> bytes:
    """Teal on the left, orange on the right: a placeholder with something to blur."""
    picture = Image.new("RGB", (width, height), (30, 111, 138))
    picture.paste((240, 150, 40), (width // 2, 0, width, height))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def rgb(hex_colour: str) -> str:
    """#1e6f8a as getComputedStyle gives it."""
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


def paused_requests(page: DevTools) -> list[dict[str, Any]]:
    page.evaluate("0")  # a round trip, so that the events sent before now are read
    return [
        event["params"] for event in page.events if event.get("method") == "Fetch.requestPaused"
    ]


def test_gallery_paints_placeholders_then_renditions_and_views_the_preview(
    page: DevTools, tmp_path: Path
) -> None:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    wide = two_tone_jpeg(1600, 1000)  # larger than the 1,440-pixel preview
    tall = image_bytes("image/png", 300, 600)
    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        user = "painter"
        images = {
            "Tall": api.uploaded(user, data=tall, filename="tall.png", title="Tall"),
            "Wide": api.uploaded(user, data=wide, filename="wide.jpg", title="Wide"),
        }
        for image in images.values():
            assert image["placeholder"] is not None, image
            assert set(image["renditions"]) == {"thumbnail", "preview"}, image
        page.call(
            "Browser.setDownloadBehavior", browser=True, behavior="allow",
            downloadPath=str(downloads),
        )  # fmt: skip
        # The renditions' bytes are held, so that what the grid shows without them can be seen.
        page.call("Network.enable", maxPostDataSize=0)
        page.call("Fetch.enable", patterns=[{"urlPattern": "*/renditions/*"}])
        sign_in(page, server.url, api.token(user))
        held = poll(lambda: len(paused_requests(page)) == 2 and paused_requests(page), "2 held")
        assert sorted(request["request"]["url"] for request in held) == sorted(
            f"{server.url}{image['renditions']['thumbnail']['url']}" for image in images.values()
        )
        assert [header(request["request"]["headers"], "Accept") for request in held] == [
            RENDITION_ACCEPT
        ] * 2
        page.evaluate(MARK_CARDS)
        for title, image in images.items():
            placeholder = image["placeholder"]
            looks = page.evaluate(f"{CARD_LOOKS}(document.querySelector({json.dumps(card(title))})"
                                  ".closest('.card'))")  # fmt: skip
            assert looks["ratio"] == pytest.approx(placeholder["aspect_ratio"], rel=0.02), title
            assert looks["background"] == rgb(placeholder["dominant_color"]), title
            assert not looks["thumbnailShown"]
            assert not looks["pendingShown"]
            # The blurhash drawn: its mean is the mean of the image (the DC component), within
            # what a JPEG and a 32-pixel canvas blur.
            expected = blurhash_mean(placeholder["blurhash"], placeholder["aspect_ratio"])
            assert looks["blurMean"] == pytest.approx(expected, abs=3), title

        for request in held:
            page.call("Fetch.continueRequest", requestId=request["requestId"])
        page.call("Fetch.disable")
        page.wait_for(f"{SHOWN_THUMBNAILS} === 2", "both renditions in the grid")
        looks = page.evaluate(f"{CARD_LOOKS}(document.querySelector('#grid .card'))")
        assert looks["thumbnailShown"]

        # The viewer shows the preview, a screen's worth: not the original, not fetched yet.
        page.click(card("Wide"))
        assert page.wait_for(FULL_IMAGE, "the preview") == ["Wide", 1440, 900]
        assert page.evaluate("document.getElementById('view-image').dataset.shows") == "preview"
        assert "Download saves the original, 1600 \N{MULTIPLICATION SIGN} 1000" in page.text(
            "#view-image-status"
        )
        frame = page.evaluate(
            "(() => { const box = document.getElementById('view-frame').getBoundingClientRect();"
            " return box.width / box.height; })()"
        )
        assert frame == pytest.approx(1.6, rel=0.02)
        sent = list(requests_sent(page.events).values())
        preview = [request for request in sent if request["url"].endswith("/renditions/preview")]
        assert [header(request["headers"], "Accept") for request in preview] == [RENDITION_ACCEPT]
        assert not [request for request in sent if request["url"].endswith("/download")]
        older = re.compile(r"/images/[^/]+/thumbnail$")  # the endpoint before renditions
        assert not [request for request in sent if older.search(request["url"])]

        # Download still saves the original's bytes.
        page.click("#view-download")
        saved = poll(lambda: list(downloads.glob("*.jpg")), "the download")
        assert [path.name for path in saved] == ["wide.jpg"]
        assert poll(lambda: saved[0].read_bytes() == wide, "the whole original")

        # The owner shares the image's location from the edit form, told what it means.
        assert page.evaluate(VIEW_DETAILS)["Location"] == "hidden from everyone but you"
        page.click("#view-edit")
        assert not page.evaluate("document.getElementById('edit-share-location').checked")
        assert "hidden from everyone but you" in page.text("#edit-share-location-hint")
        page.click("#edit-share-location")
        page.click("#edit-form button[type=submit]")
        page.wait_for("document.getElementById('view-status').textContent === 'Saved.'", "saving")
        assert page.evaluate(VIEW_DETAILS)["Location"] == "shared"
        stored = api.client.get(f"/images/{images['Wide']['image_id']}", headers=api.auth(user))
        assert stored.json()["share_location"] is True
        # Unticked again: the PATCH sends false, not nothing.
        page.click("#view-edit")
        assert page.evaluate("document.getElementById('edit-share-location').checked")
        page.click("#edit-share-location")
        page.click("#edit-form button[type=submit]")
        page.wait_for("document.getElementById('view-status').textContent === 'Saved.'", "saving")
        stored = api.client.get(f"/images/{images['Wide']['image_id']}", headers=api.auth(user))
        assert stored.json()["share_location"] is False

        # The grid again: the renditions come from the browser's cache (immutable, for a year),
        # though every request carries the token.
        page.press("Escape")
        page.wait_for(f"!{VIEWER_OPEN}", "Escape to close the viewer")
        again = len(page.events)
        page.click("#filter-clear")
        page.wait_for(f"!grid.loading && {SHOWN_THUMBNAILS} === 2", "the grid again")
        page.evaluate("0")  # a round trip, so that the events sent before now are read
        answers = [
            event["params"]["response"]
            for event in page.events[again:]
            if event.get("method") == "Network.responseReceived"
            and event["params"]["response"]["url"].endswith("/renditions/thumbnail")
        ]
        assert len(answers) == 2
        assert all(answer["fromDiskCache"] or answer["fromMemoryCache"] for answer in answers)
        assert {answer["headers"]["content-type"] for answer in answers} == {"image/avif"}
        assert page.problems() == []


def blurhash_mean(hash_: str, aspect_ratio: float) -> list[int]:
    """The mean sRGB colour of ``hash_`` decoded as a card draws it (32 pixels wide), by the
    blurhash package the server encodes with."""
    width = 32
    height = max(1, round(width / aspect_ratio))
    pixels = [pixel for row in blurhash.decode(hash_, width, height) for pixel in row]
    return [round(sum(pixel[channel] for pixel in pixels) / len(pixels)) for channel in range(3)]


def without_renditions(body: str) -> str:
    """An image resource, or a page of them, as the server sent them before renditions."""

    def older(image: dict[str, Any]) -> dict[str, Any]:
        return {**image, "renditions": {}, "placeholder": None}

    parsed = json.loads(body)
    if "images" in parsed:
        return json.dumps({**parsed, "images": [older(image) for image in parsed["images"]]})
    return json.dumps(older(parsed))


def test_gallery_shows_an_image_without_renditions_as_before(
    page: DevTools, tmp_path: Path
) -> None:
    original = image_bytes("image/png", 500, 250)
    with running_server("filesystem", tmp_path) as server:
        api = Api(server)
        user = "elder"
        image = api.uploaded(user, data=original, filename="old.png", title="Old")
        assert image["thumbnail_status"] == "ready"
        # Every answer about the image loses its renditions, as one made before them has none.
        page.call("Network.enable", maxPostDataSize=0)
        page.call(
            "Fetch.enable",
            patterns=[
                # "?" is the pattern's any character, unless escaped.
                {"urlPattern": "*/images\\?*", "requestStage": "Response"},
                {"urlPattern": f"*/images/{image['image_id']}", "requestStage": "Response"},
            ],
        )
        rewritten: set[str] = set()

        def rewrite_answers() -> None:
            for paused in paused_requests(page):
                if paused["requestId"] in rewritten:
                    continue
                rewritten.add(paused["requestId"])
                answer = page.call("Fetch.getResponseBody", requestId=paused["requestId"])
                body = answer["body"]
                if answer["base64Encoded"]:
                    body = base64.b64decode(body).decode()
                headers = [
                    field
                    for field in paused["responseHeaders"]
                    if field["name"].lower() != "content-length"  # the body's is another
                ]
                page.call(
                    "Fetch.fulfillRequest",
                    requestId=paused["requestId"],
                    responseCode=paused["responseStatusCode"],
                    responseHeaders=headers,
                    body=base64.b64encode(without_renditions(body).encode()).decode(),
                )

        page.call("Page.navigate", url=f"{server.url}/")
        page.wait_for("document.readyState === 'complete'", "the page to load")
        page.type_into("#token-input", api.token(user))
        page.click("#sign-in button[type=submit]")
        poll(lambda: rewrite_answers() or page.evaluate(f"{SHOWN_THUMBNAILS} === 1"),
             "the thumbnail of an image without renditions")  # fmt: skip
        looks = page.evaluate(f"{CARD_LOOKS}(document.querySelector('#grid .card'))")
        assert looks["ratio"] == pytest.approx(2.0, rel=0.02)  # from width and height
        assert looks["blurMean"] is None

        page.click("#grid .card button")
        assert poll(lambda: rewrite_answers() or page.evaluate(FULL_IMAGE), "the original") == [
            "Old", 500, 250
        ]  # fmt: skip
        assert page.evaluate("document.getElementById('view-image').dataset.shows") == "original"
        urls = [request["url"] for request in requests_sent(page.events).values()]
        assert f"{server.url}/images/{image['image_id']}/thumbnail" in urls
        assert f"{server.url}/images/{image['image_id']}/download" in urls
        assert not [url for url in urls if "/renditions/" in url]
        assert page.problems() == []
