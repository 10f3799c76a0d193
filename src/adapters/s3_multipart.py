"""Multipart uploads a client sends straight to the S3 bucket: the service starts them, hands
out presigned UploadPart URLs, lists what S3 holds, and completes or aborts them. No byte of
the file passes through the service.

Each part URL is signed with the part's SHA-256 (``x-amz-checksum-sha256``) and its size
(``Content-Length``): S3 refuses a PUT without that header, with another value, or with bytes
that do not hash to it, so a part is verified by S3 as it arrives. The uploads are created with
the SHA-256 checksum algorithm, so S3 keeps each part's checksum and checks them again on
completion.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from adapters.s3 import object_name
from imagecore.errors import Conflict, NotFound
from imagecore.model import PartTarget, ReceivedPart

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

CHECKSUM_HEADER = "x-amz-checksum-sha256"
_NO_SUCH_UPLOAD = frozenset({"NoSuchUpload", "404", "NotFound"})
_REFUSED_PARTS = frozenset({"InvalidPart", "InvalidPartOrder", "EntityTooSmall"})
MAX_PARTS_PER_PAGE = 1000
"""What one ListParts call returns at most (S3's own limit)."""


def _code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


class S3MultipartUploads:
    """The ``MultipartUploads`` port on an S3 bucket. ``page_size`` is how many parts one
    ListParts call asks for (S3 answers at most 1,000): smaller in tests, to prove every page
    is read."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        clock: Callable[[], datetime],
        page_size: int = MAX_PARTS_PER_PAGE,
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._clock = clock
        self._page_size = page_size

    def start(self, key: str) -> str:
        created = self._client.create_multipart_upload(
            Bucket=self._bucket,
            Key=object_name(key),
            ServerSideEncryption="AES256",
            ChecksumAlgorithm="SHA256",
        )
        return created["UploadId"]

    def part_url(
        self, key: str, handle: str, number: int, size: int, sha256_b64: str, expires_at: datetime
    ) -> PartTarget:
        seconds = max(1, int((expires_at - self._clock()).total_seconds()))
        url = self._client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self._bucket,
                "Key": object_name(key),
                "UploadId": handle,
                "PartNumber": number,
                "ContentLength": size,
                "ChecksumSHA256": sha256_b64,
            },
            ExpiresIn=seconds,
        )
        return PartTarget(url=url, headers={CHECKSUM_HEADER: sha256_b64})

    def parts(self, key: str, handle: str) -> Sequence[ReceivedPart]:
        received: list[ReceivedPart] = []
        marker = 0
        while True:
            try:
                page = self._client.list_parts(
                    Bucket=self._bucket,
                    Key=object_name(key),
                    UploadId=handle,
                    MaxParts=self._page_size,
                    PartNumberMarker=marker,
                )
            except ClientError as error:
                if _code(error) in _NO_SUCH_UPLOAD:
                    raise NotFound("no such multipart upload") from None
                raise
            for part in page.get("Parts", []):
                received.append(
                    ReceivedPart(
                        number=part["PartNumber"],
                        size=part["Size"],
                        etag=part["ETag"],
                        checksum=part.get("ChecksumSHA256"),
                    )
                )
            if not page.get("IsTruncated"):
                return received
            following = int(page.get("NextPartNumberMarker", 0))
            if following <= marker:  # a store that says "more" but moves on no further
                return received
            marker = following

    def complete(self, key: str, handle: str, parts: Sequence[ReceivedPart]) -> None:
        listed: list[CompletedPartTypeDef] = []
        for part in parts:
            entry: CompletedPartTypeDef = {"PartNumber": part.number, "ETag": part.etag}
            if part.checksum is not None:
                entry["ChecksumSHA256"] = part.checksum
            listed.append(entry)
        try:
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=object_name(key),
                UploadId=handle,
                MultipartUpload={"Parts": listed},
            )
        except ClientError as error:
            if _code(error) in _NO_SUCH_UPLOAD:
                raise NotFound("no such multipart upload") from None
            if _code(error) in _REFUSED_PARTS:
                raise Conflict(f"S3 refused the parts: {_code(error)}") from None
            raise

    def abort(self, key: str, handle: str) -> None:
        try:
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=object_name(key), UploadId=handle
            )
        except ClientError as error:
            if _code(error) not in _NO_SUCH_UPLOAD:
                raise
