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


class PayloadTooLarge(ImageCoreError):
    code = "PayloadTooLarge"


class UnsupportedMediaType(ImageCoreError):
    code = "UnsupportedMediaType"


class RangeNotSatisfiable(ImageCoreError):
    code = "RangeNotSatisfiable"


class VersionConflict(Exception):
    """Raised by a repository when a conditional write finds another version stored.

    Not a client error by itself: the service turns it into PreconditionFailed, Conflict or a retry.
    """


class AlreadyExists(Exception):
    """Raised by a repository when an image id is already taken."""
