"""The docs page at /docs: it renders the served document with the assets the server itself
serves, and in a browser it shows every operation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.api_client import Api


def test_docs_page_renders_the_document_with_local_assets(api: Api) -> None:
    page = api.client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for asset in ("/docs/static/swagger-ui.css", "/docs/static/swagger-ui-bundle.js",
                  "/docs/static/docs.js"):  # fmt: skip
        assert asset in page.text
        assert api.client.get(asset).status_code == 200
    assert "/openapi.json" in api.client.get("/docs/static/docs.js").text


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None, reason="no chromium on this machine (apt-get install chromium)"
)
# The page and the document are the same on every backend: one browser run is enough.
@pytest.mark.parametrize("server", ["memory"], indirect=True)
def test_docs_page_shows_every_operation_under_its_tag_in_a_browser(
    api: Api, tmp_path: Path
) -> None:
    import subprocess

    dom = subprocess.run(
        [
            _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp_path}", "--virtual-time-budget=10000",
            "--dump-dom", f"{api.server.url}/docs",
        ],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "Unable to render" not in dom
    for path in ("/images", "/images/{image_id}", "/images/{image_id}/download", "/health"):
        assert f'class="opblock-summary-path" data-path="{path}"' in dom

    document = api.client.get("/openapi.json").json()
    shown_tags = re.findall(r'<h3 class="opblock-tag" id="operations-tag-([^"]+)"', dom)
    assert shown_tags == [tag["name"] for tag in document["tags"]]
    for tag in document["tags"]:
        heading = re.search(rf'id="operations-tag-{tag["name"]}".*?</small>', dom)
        assert heading is not None, tag["name"]
        assert tag["description"] in heading.group(0)
    # Swagger UI names each operation's block after the group it is shown in.
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                assert f'id="operations-{operation["tags"][0]}-{operation["operationId"]}"' in dom


def test_favicon_is_an_icon_cached_for_a_week_and_both_pages_link_it(api: Api) -> None:
    import io

    from PIL import Image

    icon = api.client.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/x-icon"
    assert icon.headers["cache-control"] == "public, max-age=604800"
    with Image.open(io.BytesIO(icon.content)) as image:
        assert image.format == "ICO"
        assert {(16, 16), (32, 32)} <= image.info["sizes"]
    again = api.client.get("/favicon.ico", headers={"If-None-Match": icon.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""
    for page in ("/docs", "/"):
        assert '<link rel="icon" href="/favicon.ico">' in api.client.get(page).text
