"""The use cases as the domain tests call them most: an upload of some bytes, all the bytes of a
download, and every id of a list, page after page."""

from __future__ import annotations

from imagecore.commands import UploadCommand
from imagecore.model import Image
from imagecore.query import ListQuery
from imagecore.service import ImageService
from tests.support.doubles import chunked


def upload(service: ImageService, caller: str, data: bytes, **fields: object) -> Image:
    return service.store_upload(caller, UploadCommand(chunks=chunked(data), **fields)).image


def read_all(service: ImageService, caller: str, image_id: str) -> bytes:
    return b"".join(service.download(caller, image_id).open())


def list_ids(service: ImageService, caller: str, query: ListQuery | None = None) -> list[str]:
    query = query or ListQuery()
    ids: list[str] = []
    cursor = None
    while True:
        page = service.list_images(caller, query, cursor)
        ids += [image.image_id for image in page.images]
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor
