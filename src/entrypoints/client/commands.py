"""The client commands of `imagecore`: upload, ls, get, edit, download, thumbnail and rm, over
HTTP."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import httpx

from entrypoints.client.api import (
    DEFAULT_URL,
    ClientError,
    ImagecoreClient,
    ListFilters,
    Resource,
    UploadFields,
)
from entrypoints.client.batch import BatchReport, describe, known_images, upload_batch
from entrypoints.client.files import filename_in, image_files, save, write_to
from entrypoints.client.progress import Progress, human_bytes
from entrypoints.client.resumable import DEFAULT_RESUMABLE_ABOVE
from entrypoints.client.retry import RetryPolicy
from entrypoints.client.uploads import DEFAULT_DIRECT_ABOVE, Uploaded, Uploader

_Command = TypeVar("_Command", bound=Callable[..., Any])

UNAUTHENTICATED_HINT = (
    "hint: set IMAGECORE_TOKEN (or --token) to a token from `imagecore token USER`, "
    "run where the server's data dir is"
)
RETRY = RetryPolicy()
"""How the commands' requests are tried again (tests make it quicker)."""


def server_options(command: _Command) -> _Command:
    """--url and --token, read from the environment when not given."""
    command = click.option(
        "--token",
        envvar="IMAGECORE_TOKEN",
        help="The bearer token [env IMAGECORE_TOKEN]",
    )(command)
    return click.option(
        "--url",
        envvar="IMAGECORE_URL",
        default=DEFAULT_URL,
        show_default=True,
        help="The server [env IMAGECORE_URL]",
    )(command)


def _client(url: str, token: str | None) -> ImagecoreClient:
    return ImagecoreClient(url, token, retry=RETRY)


def _fail(error: ClientError | str) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    if isinstance(error, ClientError) and error.unauthenticated:
        click.echo(UNAUTHENTICATED_HINT, err=True)
    sys.exit(1)


def _printable(text: str) -> str:
    """Text from the server with control characters replaced, so that a title cannot drive the
    terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _named_as_typed(error: ClientError, flags: Mapping[str, str]) -> ClientError:
    """The server's refusal of a field, naming the option the user typed instead of the API's
    name for it (``--since``, not ``start_date``)."""
    if error.status != 400 or not flags:
        return error
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, flags)) + r")\b")
    message = pattern.sub(lambda match: flags[match.group(1)], error.message)
    if message == error.message:
        return error
    return ClientError(message, status=error.status, code=error.code, request_id=error.request_id)


def _metadata(_context: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    try:
        metadata = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise click.BadParameter('must be a JSON object, such as \'{"camera": "X100"}\'')
    return metadata


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)i?b?\s*", re.IGNORECASE)


def _byte_size(_context: click.Context, _param: click.Parameter, value: str | int) -> int:
    if isinstance(value, int):
        return value
    match = _SIZE.fullmatch(value)
    if match is None:
        raise click.BadParameter("a size in bytes, or with K, M or G (binary: 4M is 4 MiB)")
    scale = 1024 ** " kmg".index(match.group(2).lower() or " ")
    return int(float(match.group(1)) * scale)


# -- upload --------------------------------------------------------------------------------

UPLOAD_FLAGS = {
    "title": "--title",
    "description": "--description",
    "tags": "--tag",
    "metadata": "--metadata",
    "visibility": "--visibility",
}


def files_to_upload(paths: Iterable[Path], recursive: bool) -> list[Path]:
    """Files given by name, whatever their extension, and the image files of folders."""
    files: list[Path] = []
    for path in paths:
        if not path.is_dir():
            files.append(path)
        elif recursive:
            files.extend(image_files(path))
        else:
            raise click.UsageError(f"{path} is a folder: add --recursive to upload its images")
    return files


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # its upload says why it cannot be read


def _report_upload(report: BatchReport, total: int) -> None:
    failures = report.failures
    if report.stopped_by is not None and report.not_tried:
        click.echo(f"error: {_named_as_typed(report.stopped_by, UPLOAD_FLAGS)}", err=True)
        click.echo(
            f"stopped early: {report.why}; {len(report.not_tried)} of {total} files not tried",
            err=True,
        )
        failures = [f for f in failures if f.error.code != report.stopped_by.code]
    if failures:
        click.echo(f"{len(failures)} of {total} uploads failed:", err=True)
        for failure in sorted(failures, key=lambda failure: str(failure.path)):
            error = _named_as_typed(failure.error, UPLOAD_FLAGS)
            click.echo(f"  {failure.path}: {describe(error)}", err=True)
    if any(failure.error.unauthenticated for failure in report.failures):
        click.echo(UNAUTHENTICATED_HINT, err=True)


@click.command()
@click.argument(
    "paths",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, readable=True, path_type=Path),
)
@click.option("-r", "--recursive", is_flag=True, help="Upload the image files of folders too")
@click.option("--tag", "tags", multiple=True, help="A tag for every image (repeat for more)")
@click.option("--title", help="The title of every image")
@click.option("--description", help="The description of every image")
@click.option("--metadata", callback=_metadata, help="A flat JSON object for every image")
@click.option("--visibility", type=click.Choice(["private", "public"]), help="[default: private]")
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Uploads at once"
)
@click.option(
    "--direct-above",
    envvar="IMAGECORE_DIRECT_ABOVE",
    type=str,  # "4M": the callback reads the unit (an int default would make it INT)
    default=DEFAULT_DIRECT_ABOVE,
    callback=_byte_size,
    metavar="SIZE",
    help=(
        "Send files larger than this through a direct upload link (POST /uploads); a file "
        "the server finds too large goes that way too [default: 4M] [env IMAGECORE_DIRECT_ABOVE]"
    ),
)
@click.option(
    "--resumable-above",
    envvar="IMAGECORE_RESUMABLE_ABOVE",
    type=str,  # "4M": the callback reads the unit (an int default would make it INT)
    default=DEFAULT_RESUMABLE_ABOVE,
    callback=_byte_size,
    metavar="SIZE",
    help=(
        "Send files larger than this resumably, in pieces the server keeps as they arrive: "
        "an upload stopped part-way (Ctrl-C, a lost connection) goes on from there when run "
        "again [default: 64M] [env IMAGECORE_RESUMABLE_ABOVE]"
    ),
)
@server_options
def upload(
    paths: tuple[Path, ...],
    recursive: bool,
    tags: tuple[str, ...],
    title: str | None,
    description: str | None,
    metadata: dict[str, object] | None,
    visibility: str | None,
    jobs: int,
    direct_above: int,
    resumable_above: int,
    url: str,
    token: str | None,
) -> None:
    """Upload image files, and with --recursive the .jpg, .jpeg, .png, .gif, .webp, .heic,
    .heif and .avif files in folders. Prints `IMAGE_ID  PATH` for each file on the server,
    whether this run or an earlier one sent it: files the server has already (by their
    SHA-256) are not sent again, and big files an earlier run stopped sending go on from where
    the server stands (their upload URLs are kept in $XDG_STATE_HOME/imagecore/uploads.json)."""
    files = files_to_upload(paths, recursive)
    if not files:
        _fail("no image files to upload (.jpg, .jpeg, .png, .gif, .webp, .heic, .heif or .avif)")
    fields = UploadFields(
        title=title, description=description, tags=tags, metadata=metadata, visibility=visibility
    )
    sizes = [_size_of(path) for path in files]
    with _client(url, token) as client:
        try:
            known = known_images(client, len(files))
        except ClientError as exc:
            _fail(exc)
        uploader = Uploader(
            client,
            fields,
            direct_above=direct_above,
            resumable_above=resumable_above,
            known=known,
        )
        progress = Progress(len(files), sum(sizes), sys.stderr, live=sys.stderr.isatty())

        def done(uploaded: Uploaded) -> None:
            click.echo(f"{uploaded.image['image_id']}  {uploaded.file.path}")

        try:
            report = upload_batch(
                uploader,
                files,
                sizes,
                jobs,
                progress,
                done,
                lambda error: _named_as_typed(error, UPLOAD_FLAGS),
            )
        finally:
            progress.close()
    _report_upload(report, len(files))
    click.echo(progress.summary(), err=True)
    if report.failures or report.not_tried:
        sys.exit(1)


# -- ls and get ----------------------------------------------------------------------------

LIST_FLAGS = {
    "user_id": "--user-id",
    "tags": "--tag",
    "content_type": "--content-type",
    "title": "--title",
    "start_date": "--since",
    "end_date": "--until",
    "order": "--order",
    "limit": "--limit",
}
_COLUMNS = (
    ("ID", 26, "<"),
    ("CREATED", 19, "<"),
    ("SIZE", 9, ">"),
    ("WxH", 11, ">"),
    ("VISIBILITY", 10, "<"),
    ("OWNER", 16, "<"),
    ("FILE", 24, "<"),
)


def _size(size: int) -> str:
    return human_bytes(size)


def _fit(text: str, width: int, align: str) -> str:
    """``text`` in a column: cut (with an ellipsis) when too wide, padded otherwise."""
    shown = _printable(text)
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return f"{shown:{align}{width}}"


def _row(cells: Iterable[str], last: str) -> str:
    fitted = [
        _fit(cell, width, align) for cell, (_, width, align) in zip(cells, _COLUMNS, strict=True)
    ]
    return "  ".join([*fitted, last]).rstrip()


def table_header() -> str:
    return _row((name for name, _, _ in _COLUMNS), "TITLE")


def table_row(image: Resource) -> str:
    created = str(image["created_at"]).replace("T", " ")[:19]
    return _row(
        (
            str(image["image_id"]),
            created,
            _size(int(image["size"])),
            f"{image['width']}x{image['height']}",
            str(image["visibility"]),
            str(image.get("user_id") or ""),
            str(image.get("filename") or ""),
        ),
        _printable(str(image.get("title") or "")),
    )


@click.command("ls")
@click.option("--user-id", help="Only this user's images")
@click.option("--mine", is_flag=True, help="Only your own images (the token's user)")
@click.option(
    "--tag", "tags", multiple=True, help="Only images with this tag (repeat: all of them)"
)
@click.option("--content-type", help="Only this type, such as image/png")
@click.option("--title", help="Only titles starting with this (any case)")
@click.option("--since", help="Created on or after this ISO-8601 date or time")
@click.option("--until", help="Created on or before this ISO-8601 date or time (a date: all of it)")
@click.option("--order", type=click.Choice(["asc", "desc"]), help="By creation [default: desc]")
@click.option("--limit", type=click.IntRange(1, 100), help="Images per page [default: 50]")
@click.option("--all", "every_page", is_flag=True, help="Every page, not only the first")
@click.option("--json", "as_json", is_flag=True, help="The resources as JSON, one per line")
@server_options
def list_images(
    user_id: str | None,
    mine: bool,
    tags: tuple[str, ...],
    content_type: str | None,
    title: str | None,
    since: str | None,
    until: str | None,
    order: str | None,
    limit: int | None,
    every_page: bool,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """List the images you can see: yours and everyone's public ones, newest first. The table
    shows id, creation time, size, dimensions, visibility, owner, file name and title."""
    if mine and user_id is not None:
        raise click.UsageError("--mine and --user-id name the owner twice: give one")
    with _client(url, token) as client:
        flags = LIST_FLAGS
        if mine:
            if client.subject is None:
                _fail("--mine needs a token that names its user (a JWT with a sub claim)")
            user_id = client.subject
            flags = {**LIST_FLAGS, "user_id": "--mine"}
        filters = ListFilters(
            user_id=user_id,
            tags=tags,
            content_type=content_type,
            title=title,
            since=since,
            until=until,
            order=order,
            limit=limit,
        )
        try:
            _print_images(_listed(client, filters, every_page), as_json)
        except ClientError as exc:
            _fail(_named_as_typed(exc, flags))


def _listed(client: ImagecoreClient, filters: ListFilters, every_page: bool) -> Iterator[Resource]:
    """The images, the first page fetched before anything is printed, so that a refusal shows
    alone."""
    first = client.page(filters)
    if every_page and first.next_cursor is not None:
        return itertools.chain(first.images, client.images(filters, first.next_cursor))
    if first.next_cursor is not None:
        click.echo("(more images: --all lists every page)", err=True)
    return iter(first.images)


def _print_images(images: Iterator[Resource], as_json: bool) -> None:
    if as_json:
        for image in images:
            click.echo(json.dumps(image))
        return
    click.echo(table_header())
    for image in images:
        click.echo(table_row(image))


def _print_resource(image: Resource, as_json: bool) -> None:
    click.echo(json.dumps(image) if as_json else json.dumps(image, indent=2, ensure_ascii=False))


@click.command()
@click.argument("image_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Compact, on one line")
@server_options
def get(image_id: str, as_json: bool, url: str, token: str | None) -> None:
    """Print an image's metadata as JSON (indented, unless --json)."""
    with _client(url, token) as client:
        try:
            image = client.get(image_id)
        except ClientError as exc:
            _fail(exc)
    _print_resource(image, as_json)


# -- edit ----------------------------------------------------------------------------------

EDIT_FLAGS = {**UPLOAD_FLAGS, "tags": "--add-tag/--remove-tag"}
EDIT_TRIES = 3
"""Reads and writes of an edit whose image changed between them (its thumbnail settling
changes its version too): each try applies the edit to what it read."""


def _folded(tag: str) -> str:
    """A tag as the server keeps it, near enough to match: NFKC, case-folded, single spaces."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", tag).casefold())
    return " ".join(folded.split())


def _edited_tags(
    current: list[str], add: tuple[str, ...], remove: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """The tags after the edit, and the tags asked removed that the image did not have."""
    removed = {_folded(tag) for tag in remove}
    kept = [tag for tag in current if _folded(tag) not in removed]
    present = {_folded(tag) for tag in kept}
    for tag in add:
        if _folded(tag) not in present:
            kept.append(tag)
            present.add(_folded(tag))
    had = {_folded(tag) for tag in current}
    absent = [tag for tag in remove if _folded(tag) not in had]
    return kept, absent


def _version_of(etag: str | None) -> str:
    return (etag or "").strip('"').removeprefix("W/").strip('"').removeprefix("v") or "?"


@click.command()
@click.argument("image_id", metavar="ID")
@click.option("--title", help="The new title")
@click.option("--description", help="The new description")
@click.option("--add-tag", "add_tags", multiple=True, help="Add this tag (repeat for more)")
@click.option("--remove-tag", "remove_tags", multiple=True, help="Remove this tag (repeat)")
@click.option(
    "--metadata", callback=_metadata, help="The new metadata: a flat JSON object (replaces it)"
)
@click.option("--visibility", type=click.Choice(["private", "public"]))
@click.option(
    "--if-version",
    type=click.IntRange(1),
    help="Change it only if it is still at this version (from `imagecore get`), else fail",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result compact, on one line")
@server_options
def edit(
    image_id: str,
    title: str | None,
    description: str | None,
    add_tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    metadata: dict[str, object] | None,
    visibility: str | None,
    if_version: int | None,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """Change an image's title, description, tags, metadata or visibility (yours only), and
    print it as it is then. The image is read first, and written only if it is still as read
    (If-Match): nobody's change in between is lost."""
    changes: dict[str, object] = {
        name: value
        for name, value in (
            ("title", title),
            ("description", description),
            ("metadata", metadata),
            ("visibility", visibility),
        )
        if value is not None
    }
    if not changes and not add_tags and not remove_tags:
        raise click.UsageError(
            "nothing to change: give --title, --description, --add-tag, --remove-tag, "
            "--metadata or --visibility"
        )
    if both := {_folded(tag) for tag in add_tags} & {_folded(tag) for tag in remove_tags}:
        raise click.UsageError(f"--add-tag and --remove-tag both name {', '.join(sorted(both))}")
    with _client(url, token) as client:
        try:
            image = _edit(client, image_id, changes, add_tags, remove_tags, if_version)
        except ClientError as exc:
            _fail(_named_as_typed(exc, EDIT_FLAGS))
    _print_resource(image, as_json)


def _edit(
    client: ImagecoreClient,
    image_id: str,
    changes: dict[str, object],
    add_tags: tuple[str, ...],
    remove_tags: tuple[str, ...],
    if_version: int | None,
) -> Resource:
    for attempt in range(1, EDIT_TRIES + 1):
        current, etag = client.get_with_etag(image_id)
        if if_version is not None and str(if_version) != _version_of(etag):
            raise _conflict(image_id, if_version, etag)
        wanted = dict(changes)
        if add_tags or remove_tags:
            wanted["tags"], absent = _edited_tags(list(current["tags"]), add_tags, remove_tags)
            if absent and attempt == 1:
                click.echo(f"note: {image_id} has no tag {', '.join(absent)}", err=True)
        try:
            return client.update(image_id, wanted, if_match=etag)
        except ClientError as exc:
            if exc.status != 412:
                raise
            if if_version is not None:
                raise _conflict(image_id, if_version, None) from None
    raise ClientError(
        f"{image_id} changed each time between reading and writing it ({EDIT_TRIES} tries): "
        "nothing was changed; try again",
        status=412,
        code="PreconditionFailed",
    )


def _conflict(image_id: str, expected: int, etag: str | None) -> ClientError:
    now = f" (it is at version {_version_of(etag)})" if etag else ""
    return ClientError(
        f"{image_id} is no longer at version {expected}{now}: someone changed it since; "
        "nothing was changed. Read it again (imagecore get) and edit that version",
        status=412,
        code="PreconditionFailed",
    )


# -- download, thumbnail and rm ------------------------------------------------------------

STDOUT = "-"


def _save_answer(
    response: httpx.Response, image_id: str, output: str, into_folder: bool, force: bool
) -> Path | None:
    """Write a streamed answer's bytes: to stdout (``-``, and then None), into a folder under
    the server's file name made safe, or to the file named."""
    if output == STDOUT:
        with click.open_file(STDOUT, "wb") as stdout:  # kept open: it is stdout
            write_to(stdout, response.iter_bytes())
        return None
    target = filename_in(Path(output), response, image_id) if into_folder else Path(output)
    save(response.iter_bytes(), target, overwrite=force)
    return target


def _into_folder(output: str | None, image_ids: tuple[str, ...]) -> bool:
    """Whether the files go into a folder (named by the server) rather than to one file."""
    if output == STDOUT:
        if len(image_ids) > 1:
            raise click.UsageError("-o - writes one image to stdout: give one id")
        return False
    if output is None or output.endswith(("/", os.sep)) or Path(output).is_dir():
        return True
    if len(image_ids) == 1:
        return False
    if Path(output).exists():
        raise click.UsageError(f"{output} is a file: with several ids, -o names a folder")
    return True


def _fetch_all(
    image_ids: tuple[str, ...],
    fetch: Callable[[ImagecoreClient, str], AbstractContextManager[httpx.Response]],
    output: str | None,
    force: bool,
    url: str,
    token: str | None,
) -> None:
    into_folder = _into_folder(output, image_ids)
    if into_folder:
        Path(output or ".").mkdir(parents=True, exist_ok=True)

    def one(image_id: str, client: ImagecoreClient) -> Path | None:
        with fetch(client, image_id) as response:
            return _save_answer(response, image_id, output or ".", into_folder, force)

    if _each(image_ids, one, url, token, quiet=output == STDOUT):
        sys.exit(1)


_OUTPUT_HELP = (
    "A file (one id), - for stdout (one id), or a folder (one that exists, a name ending in /, "
    "or any name with several ids) where files get the server's name for them [default: .]"
)


@click.command()
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
@click.option("-o", "--output", help=_OUTPUT_HELP)
@click.option("-f", "--force", is_flag=True, help="Overwrite files that exist")
@server_options
def download(
    image_ids: tuple[str, ...], output: str | None, force: bool, url: str, token: str | None
) -> None:
    """Download images' original bytes. Prints `IMAGE_ID  PATH` for each file written."""
    _fetch_all(image_ids, ImagecoreClient.download, output, force, url, token)


@click.command()
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
@click.option("-o", "--output", help=_OUTPUT_HELP)
@click.option("-f", "--force", is_flag=True, help="Overwrite files that exist")
@server_options
def thumbnail(
    image_ids: tuple[str, ...], output: str | None, force: bool, url: str, token: str | None
) -> None:
    """Download images' thumbnails (once the server has made them). Prints `IMAGE_ID  PATH`
    for each file written."""
    _fetch_all(image_ids, ImagecoreClient.thumbnail, output, force, url, token)


def _delete(image_id: str, client: ImagecoreClient) -> None:
    """Delete an image that is there. The server's DELETE answers an image deleted before
    as it answers the first time (it is idempotent), so the image is looked up first: an id
    that is not there (or not yours to see) is a failure, as it is for every other command."""
    client.get(image_id)
    client.delete(image_id)


@click.command("rm")
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
@server_options
def remove(image_ids: tuple[str, ...], url: str, token: str | None) -> None:
    """Delete images (yours only); an id that is not there is a failure."""
    if _each(image_ids, _delete, url, token):
        sys.exit(1)


def _each(
    image_ids: tuple[str, ...],
    action: Callable[[str, ImagecoreClient], Path | None],
    url: str,
    token: str | None,
    *,
    quiet: bool = False,
) -> bool:
    """Run ``action`` on each id, printing `ID  RESULT` (unless ``quiet``) or the error;
    whether any failed. A server that cannot be reached or refuses the token ends it at once:
    every other id would fail the same way."""
    failures: list[ClientError] = []
    with _client(url, token) as client:
        for image_id in image_ids:
            try:
                result = action(image_id, client)
            except (ClientError, OSError) as exc:
                error = exc if isinstance(exc, ClientError) else ClientError(str(exc))
                failures.append(error)
                if error.unreachable or error.unauthenticated:
                    _fail(error)
                click.echo(f"error: {image_id}: {error}", err=True)
            else:
                if not quiet:
                    click.echo(f"{image_id}  {result or 'deleted'}")
    return bool(failures)


CLIENT_COMMANDS = (upload, list_images, get, edit, download, thumbnail, remove)
