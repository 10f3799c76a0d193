"""A client of one running server, as the HTTP and client tests talk to it: a token per user,
uploads that wait for their thumbnail job, downloads that follow the redirect to the blob store,
every page of a list; and the paths of one image."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from adapters.secret_file import load_or_create_secret
from entrypoints.http.auth import TokenAuthority
from tests.support.http_server import ServerProcess
from tests.support.sample_images import image_bytes

UNKNOWN_ID = "01JAAAAAAAAAAAAAAAAAAAAAAA"
"""A well-formed image id that no test ever uploads."""


def path(image: dict[str, Any], suffix: str = "") -> str:
    return f"/images/{image['image_id']}{suffix}"


class Api:
    """A client of one running server, with a token per user name."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.url, timeout=30)
        self._tokens: dict[str, str] = {}
        self._authority = TokenAuthority(load_or_create_secret(server.data_dir))
        self._lock = threading.Lock()

    def token(self, user: str) -> str:
        """A token for ``user``, made in this process with the secret the server keeps in its
        data dir (`imagecore token`, which does the same, has tests of its own)."""
        with self._lock:
            if user not in self._tokens:
                self._tokens[user] = self._authority.issue(user)
            return self._tokens[user]

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def upload(
        self,
        user: str,
        data: bytes | None = None,
        filename: str = "photo.png",
        client_type: str = "application/octet-stream",
        **fields: str,
    ) -> httpx.Response:
        files = {"file": (filename, image_bytes() if data is None else data, client_type)}
        return self.client.post("/images", headers=self.auth(user), files=files, data=fields)

    def uploaded(self, user: str, **kwargs: Any) -> dict[str, Any]:
        """An uploaded image once its thumbnail job has settled, so that no background change
        moves its version on while the test looks at it."""
        response = self.upload(user, **kwargs)
        assert response.status_code == 201, response.text
        resource: dict[str, Any] = response.json()
        return self.settled(user, resource["image_id"])

    def settled(self, user: str, image_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """The image once its thumbnail is ready or failed."""
        deadline = time.monotonic() + timeout
        while True:
            response = self.client.get(f"/images/{image_id}", headers=self.auth(user))
            assert response.status_code == 200, response.text
            resource: dict[str, Any] = response.json()
            if resource["thumbnail_status"] != "pending" or time.monotonic() > deadline:
                return resource
            time.sleep(0.02)

    def download(
        self, user: str, image_id: str, **headers: str
    ) -> tuple[httpx.Response, httpx.Response]:
        """GET /images/{id}/download as a client that follows redirects: the server's own
        answer, and the one with the bytes (the same, unless the server redirected to a
        presigned URL of the blob store)."""
        first = self.client.get(
            f"/images/{image_id}/download", headers={**self.auth(user), **headers}
        )
        if first.status_code != 307:
            return first, first
        assert first.headers["cache-control"] == "no-store"
        # A presigned URL carries its own authorization: the bearer token is not sent on.
        return first, httpx.get(first.headers["location"], headers=headers, timeout=30)

    def list(self, user: str, **params: Any) -> httpx.Response:
        return self.client.get("/images", headers=self.auth(user), params=params)

    def list_all(self, user: str, **params: Any) -> list[dict[str, Any]]:
        """Every page, following next_cursor."""
        images: list[dict[str, Any]] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = self.list(user, **query)
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["count"] == len(page["images"])
            images.extend(page["images"])
            cursor = page["next_cursor"]
            if cursor is None:
                return images
