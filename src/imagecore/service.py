"""ImageService: every use case behind one object, for the entrypoints. The rules live in the
modules of the use cases (uploads, reads, lifecycle, thumbnails); this only wires them to one
set of ports and passes calls on."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta

import attrs

from imagecore import validation
from imagecore.commands import (
    DirectUploadCommand,
    NewResumableUpload,
    NewUpload,
    PartUrlsRequest,
    UpdateCommand,
    UploadCommand,
)
from imagecore.cursor import CursorCodec
from imagecore.health import check_stores
from imagecore.lifecycle import ORPHAN_GRACE, Lifecycle
from imagecore.model import Image, Job, ThumbnailStatus
from imagecore.multipart import MultipartSessions, PartUrls
from imagecore.ports import (
    BlobCopier,
    BlobStore,
    Clock,
    IdGenerator,
    ImageInspector,
    ImageRepository,
    JobQueue,
    MultipartUploads,
    PartialBlobs,
    Renderer,
    StorageSpace,
    UploadTargets,
)
from imagecore.query import ListQuery
from imagecore.reads import Reads
from imagecore.results import Download, Page, ReconcileReport, Stored, UploadSlot
from imagecore.resumable import Appending, Checksum, ResumableUploads
from imagecore.thumbnails import (
    DEFAULT_PREVIEW_SIDE,
    DEFAULT_THUMBNAIL_SIDE,
    Thumbnails,
    rendition_sizes,
)
from imagecore.upload_sessions import DEFAULT_SESSION_TTL, SessionSlots, UploadSession
from imagecore.uploads import (
    DEFAULT_MAX_DIRECT_UPLOAD_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES,
    DEFAULT_MAX_UPLOAD_BYTES,
    DEFAULT_URL_TTL,
    IncomingUpload,
    Uploads,
)


@attrs.define
class ImageService:
    """Upload, list, get, download, update and delete images on behalf of a caller.

    ``caller`` is always an authenticated user id. An image another user owns is NotFound unless
    it is public, and then it may be read but never changed.

    Without ``jobs`` no thumbnail is ever made (they stay pending); without ``upload_targets``
    there are no direct uploads; without ``space`` the stores are taken never to fill. Without
    ``multipart`` no upload session is sent in parts straight to the blob store (tus, through
    ``partials``, is the resumable way then); with ``copier`` the worker has the store copy the
    file of such a session rather than write it again.
    """

    repository: ImageRepository
    blobs: BlobStore
    inspector: ImageInspector
    clock: Clock
    ids: IdGenerator
    cursors: CursorCodec
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    url_ttl: timedelta = DEFAULT_URL_TTL
    limits: validation.Limits = validation.DEFAULT_LIMITS
    max_direct_upload_bytes: int = DEFAULT_MAX_DIRECT_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    thumbnail_side: int = DEFAULT_THUMBNAIL_SIDE
    preview_side: int = DEFAULT_PREVIEW_SIDE
    jobs: JobQueue | None = None
    renderer: Renderer | None = None
    upload_targets: UploadTargets | None = None
    space: StorageSpace | None = None
    partials: PartialBlobs | None = None
    max_resumable_upload_bytes: int = DEFAULT_MAX_RESUMABLE_UPLOAD_BYTES
    session_ttl: timedelta = DEFAULT_SESSION_TTL
    multipart: MultipartUploads | None = None
    copier: BlobCopier | None = None
    _uploads: Uploads = attrs.field(init=False)
    _resumable: ResumableUploads = attrs.field(init=False)
    _multipart: MultipartSessions = attrs.field(init=False)
    _reads: Reads = attrs.field(init=False)
    _lifecycle: Lifecycle = attrs.field(init=False)
    _thumbnails: Thumbnails = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._uploads = Uploads(
            repository=self.repository,
            blobs=self.blobs,
            inspector=self.inspector,
            clock=self.clock,
            ids=self.ids,
            limits=self.limits,
            max_upload_bytes=self.max_upload_bytes,
            max_direct_upload_bytes=self.max_direct_upload_bytes,
            max_pixels=self.max_pixels,
            url_ttl=self.url_ttl,
            jobs=self.jobs,
            upload_targets=self.upload_targets,
            max_resumable_upload_bytes=self.max_resumable_upload_bytes,
            copier=self.copier,
        )
        slots = SessionSlots(self._uploads, self.session_ttl)
        self._resumable = ResumableUploads(slots, self.partials)
        self._multipart = MultipartSessions(slots, self.multipart)
        self._reads = Reads(
            repository=self.repository,
            blobs=self.blobs,
            cursors=self.cursors,
            url_ttl=self.url_ttl,
            thumbnail_side=self.thumbnail_side,
        )
        self._lifecycle = Lifecycle(
            repository=self.repository,
            blobs=self.blobs,
            clock=self.clock,
            limits=self.limits,
            url_ttl=self.url_ttl,
            jobs=self.jobs,
            partials=self.partials,
            multipart=self.multipart,
        )
        self._thumbnails = Thumbnails(
            repository=self.repository,
            blobs=self.blobs,
            renderer=self.renderer,
            sizes=rendition_sizes(self.thumbnail_side, self.preview_side),
        )

    # uploads
    def begin_upload(self, caller: str, upload: NewUpload) -> Stored | IncomingUpload:
        return self._uploads.begin_upload(caller, upload)

    def store_upload(self, caller: str, command: UploadCommand) -> Stored:
        return self._uploads.store_upload(caller, command)

    def create_upload(self, caller: str, command: DirectUploadCommand) -> UploadSlot | Stored:
        return self._uploads.create_upload(caller, command)

    def begin_receive(self, upload_id: str) -> IncomingUpload:
        return self._uploads.begin_receive(upload_id)

    def receive_upload(self, upload_id: str, chunks: Iterable[bytes]) -> Image:
        return self._uploads.receive_upload(upload_id, chunks)

    def complete_upload(self, key: str) -> Image | None:
        return self._uploads.complete_upload(key)

    # resumable uploads

    def open_session(self, caller: str, command: NewResumableUpload) -> UploadSession:
        return self._resumable.open_session(caller, command)

    def upload_session(self, caller: str, upload_id: str) -> UploadSession:
        return self._resumable.session(caller, upload_id)

    def begin_append(
        self, caller: str, upload_id: str, offset: int, checksum: Checksum | None = None
    ) -> Appending:
        return self._resumable.begin_append(caller, upload_id, offset, checksum)

    def cancel_session(self, caller: str, upload_id: str) -> None:
        self._resumable.cancel(caller, upload_id)

    # resumable uploads sent in parts straight to the blob store (S3 multipart uploads)

    def check_multipart(self) -> None:
        self._multipart.check_multipart()

    def open_multipart(self, caller: str, command: NewResumableUpload) -> UploadSession | Stored:
        return self._multipart.open_multipart(caller, command)

    def part_targets(self, caller: str, upload_id: str, request: PartUrlsRequest) -> PartUrls:
        return self._multipart.part_targets(caller, upload_id, request)

    def multipart_session(self, caller: str, upload_id: str) -> UploadSession:
        return self._multipart.multipart_session(caller, upload_id)

    def complete_multipart(self, caller: str, upload_id: str) -> UploadSession:
        return self._multipart.complete(caller, upload_id)

    def cancel_multipart(self, caller: str, upload_id: str) -> None:
        self._multipart.cancel_multipart(caller, upload_id)

    # reads

    def list_images(self, caller: str, query: ListQuery, cursor: str | None = None) -> Page:
        return self._reads.list_images(caller, query, cursor)

    def get(self, caller: str, image_id: str) -> Image:
        return self._reads.get(caller, image_id)

    def download(self, caller: str, image_id: str) -> Download:
        return self._reads.download(caller, image_id)

    def thumbnail(self, caller: str, image_id: str) -> Download:
        return self._reads.thumbnail(caller, image_id)

    def rendition(
        self, caller: str, image_id: str, name: str, acceptable: Sequence[str]
    ) -> Download:
        return self._reads.rendition(caller, image_id, name, acceptable)

    # lifecycle
    def update(
        self,
        caller: str,
        image_id: str,
        command: UpdateCommand,
        expected_version: int | None = None,
    ) -> Image:
        return self._lifecycle.update(caller, image_id, command, expected_version)

    def delete(self, caller: str, image_id: str) -> None:
        self._lifecycle.delete(caller, image_id)

    def reconcile(self, grace: timedelta = ORPHAN_GRACE) -> ReconcileReport:
        return self._lifecycle.reconcile(grace)

    # background work
    def run_job(self, job: Job, final_attempt: bool) -> ThumbnailStatus | None:
        return self._thumbnails.run_job(job, final_attempt)

    # operations
    def health(self) -> dict[str, str]:
        """Each store's state and the room for new images, as ``GET /health`` reports them."""
        return check_stores(self.repository, self.blobs, self.space)
