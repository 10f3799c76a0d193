"""Domain errors. Each carries a stable code; the entrypoints map codes to statuses in one table."""

from __future__ import annotations


class ImageCoreError(Exception):
    """Base of every error a client can cause. ``code`` is stable and part of the API."""

    code = "ImageCoreError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ImageCoreError):
    code = "InvalidInput"


class InvalidCursor(InvalidInput):
    code = "InvalidCursor"


class Unauthenticated(ImageCoreError):
    code = "Unauthenticated"


class NotFound(ImageCoreError):
    """The image does not exist, or the caller may not see it: the two are never told apart."""

    code = "NotFound"


class PreconditionFailed(ImageCoreError):
    code = "PreconditionFailed"


class Conflict(ImageCoreError):
    code = "Conflict"


class Locked(ImageCoreError):
    """Another request is sending bytes to the same resumable upload: try again once it ended."""

    code = "Locked"


class Gone(ImageCoreError):
    """A resumable upload that expired, or was cancelled: its bytes are no longer kept."""

    code = "Gone"


class ChecksumMismatch(ImageCoreError):
    """The bytes of a request are not those its checksum names: none of them were kept."""

    code = "ChecksumMismatch"


class NotAcceptable(ImageCoreError):
    """None of the formats the client accepts is one the resource is kept in."""

    code = "NotAcceptable"


class PayloadTooLarge(ImageCoreError):
    code = "PayloadTooLarge"


class UnsupportedMediaType(ImageCoreError):
    code = "UnsupportedMediaType"


class RangeNotSatisfiable(ImageCoreError):
    code = "RangeNotSatisfiable"


class InsufficientStorage(ImageCoreError):
    """The stores have no room for the write, and nothing of it was kept. Not the client's
    doing: deleting images makes room again, and deletes still work when storage is full."""

    code = "InsufficientStorage"


class VersionConflict(Exception):
    """Raised by a repository when a conditional write finds another version stored.

    Not a client error by itself: the service turns it into PreconditionFailed, Conflict or a retry.
    """


class AlreadyExists(Exception):
    """Raised by a repository when an image id is already taken."""


class ThumbnailTooCostly(Exception):
    """Raised by a renderer for an image that would take more memory or time to decode than
    it is allowed. Not a client error (the upload itself was fine) and not a passing fault:
    the same bytes cost the same on every attempt, so the thumbnail fails at once."""


class DuplicateContent(Exception):
    """Raised by a repository when the image claims its bytes (``Image.claims_content``) and
    another ACTIVE image of the same owner already holds the claim on them.

    ``image_id`` names that image. Not a client error by itself: the upload answers with it.
    """

    def __init__(self, image_id: str) -> None:
        super().__init__(image_id)
        self.image_id = image_id
