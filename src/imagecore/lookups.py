"""How the use cases find the image a caller names, and who may see or change it."""

from __future__ import annotations

from imagecore import validation
from imagecore.errors import NotFound
from imagecore.model import Image
from imagecore.ports import ImageRepository


def find_image(repository: ImageRepository, image_id: str) -> Image | None:
    """The image in whatever state, or None; a string that cannot be an id names none."""
    return repository.get(image_id) if validation.is_image_id(image_id) else None


def visible(image: Image | None, caller: str) -> Image:
    """The image found, if the caller may see it (its owner always, anyone if it is public);
    an image the caller may not see is NotFound, never told apart from one that does not
    exist."""
    if image is None or not image.is_visible_to(caller):
        raise NotFound("no such image")
    return image


def owned_active_image(repository: ImageRepository, caller: str, image_id: str) -> Image:
    """The caller's own image, if it is active: only its owner may change it."""
    image = find_image(repository, image_id)
    if image is None or image.user_id != caller or not image.is_active:
        raise NotFound("no such image")
    return image
