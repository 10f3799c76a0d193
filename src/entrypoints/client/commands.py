"""The client commands of `imagecore`: upload, ls, get, download and rm, over HTTP."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import attrs
import click
from click._termui_impl import ProgressBar

from entrypoints.client.api import (
    DEFAULT_URL,
    ClientError,
    ImagecoreClient,
    ListFilters,
    Resource,
    UploadFields,
)
from entrypoints.client.files import filename_in, image_files, save

_Command = TypeVar("_Command", bound=Callable[..., Any])

UNAUTHENTICATED_HINT = (
    "hint: set IMAGECORE_TOKEN (or --token) to a token from `imagecore token USER`, "
    "run where the server's data dir is"
)


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


def _fail(error: ClientError | str) -> NoReturn:
    click.echo(f"error: {error}", err=True)
    if isinstance(error, ClientError) and error.unauthenticated:
        click.echo(UNAUTHENTICATED_HINT, err=True)
    sys.exit(1)


def _printable(text: str) -> str:
    """Text from the server with control characters replaced, so that a title cannot drive the
    terminal."""
    return "".join(ch if ch.isprintable() else "?" for ch in text)


# -- upload --------------------------------------------------------------------------------


@attrs.frozen
class UploadFailure:
    path: Path
    error: ClientError


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


class _Progress:
    """Counts finished uploads on a bar on stderr when someone watches it there, and keeps the
    bar off the lines printed on stdout."""

    def __init__(self, bar: ProgressBar[int] | None) -> None:
        self._bar = bar

    def done(self, line: str | None) -> None:
        if line is not None:
            if self._bar is not None:
                click.echo("\r\x1b[K", nl=False, err=True)  # clear the bar; update redraws it
            click.echo(line)
        if self._bar is not None:
            self._bar.update(1)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[_Progress]:
    if not sys.stderr.isatty():
        yield _Progress(None)
        return
    with click.progressbar(length=total, label="uploading", file=sys.stderr, show_pos=True) as bar:
        yield _Progress(bar)


def upload_all(
    client: ImagecoreClient, files: list[Path], fields: UploadFields, jobs: int
) -> list[UploadFailure]:
    """Upload ``files`` on ``jobs`` threads, printing each success as it lands."""
    failures: list[UploadFailure] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool, _progress(len(files)) as progress:
        pending: dict[Future[Resource], Path] = {
            pool.submit(client.upload, path, fields): path for path in files
        }
        for future in as_completed(pending):
            path = pending[future]
            line = None
            try:
                line = f"{future.result()['image_id']}  {path}"
            except ClientError as exc:
                failures.append(UploadFailure(path, exc))
            except OSError as exc:  # the file went away or cannot be read
                failures.append(UploadFailure(path, ClientError(f"cannot read it: {exc}")))
            progress.done(line)
    return failures


def _report_upload_failures(failures: list[UploadFailure], total: int) -> None:
    click.echo(f"{len(failures)} of {total} uploads failed:", err=True)
    for failure in sorted(failures, key=lambda failure: str(failure.path)):
        status = f"{failure.error.status} " if failure.error.status else ""
        click.echo(f"  {failure.path}: {status}{failure.error}", err=True)
    if any(failure.error.unauthenticated for failure in failures):
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
    url: str,
    token: str | None,
) -> None:
    """Upload image files, and with --recursive the .jpg, .jpeg, .png, .gif and .webp files
    in folders. Prints `IMAGE_ID  PATH` for each image uploaded."""
    files = files_to_upload(paths, recursive)
    if not files:
        _fail("no image files to upload (.jpg, .jpeg, .png, .gif or .webp)")
    fields = UploadFields(
        title=title, description=description, tags=tags, metadata=metadata, visibility=visibility
    )
    with ImagecoreClient(url, token) as client:
        failures = upload_all(client, files, fields, jobs)
    if failures:
        _report_upload_failures(failures, len(files))
        sys.exit(1)


# -- ls and get ----------------------------------------------------------------------------

_TABLE_ROW = "{:<26}  {:<19}  {:>9}  {:>11}  {:<10}  {}"


def _size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def table_row(image: Resource) -> str:
    created = str(image["created_at"]).replace("T", " ")[:19]
    return _TABLE_ROW.format(
        image["image_id"],
        created,
        _size(int(image["size"])),
        f"{image['width']}x{image['height']}",
        image["visibility"],
        _printable(str(image.get("title") or "")),
    )


@click.command("ls")
@click.option("--user-id", help="Only this user's images")
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
    """List the images you can see: yours and everyone's public ones, newest first."""
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
    with ImagecoreClient(url, token) as client:
        try:
            _print_images(_listed(client, filters, every_page), as_json)
        except ClientError as exc:
            _fail(exc)


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
    click.echo(_TABLE_ROW.format("ID", "CREATED", "SIZE", "WxH", "VISIBILITY", "TITLE"))
    for image in images:
        click.echo(table_row(image))


@click.command()
@click.argument("image_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Compact, on one line")
@server_options
def get(image_id: str, as_json: bool, url: str, token: str | None) -> None:
    """Print an image's metadata as JSON (indented, unless --json)."""
    with ImagecoreClient(url, token) as client:
        try:
            image = client.get(image_id)
        except ClientError as exc:
            _fail(exc)
    click.echo(json.dumps(image) if as_json else json.dumps(image, indent=2, ensure_ascii=False))


# -- download and rm -----------------------------------------------------------------------


def _download_one(
    client: ImagecoreClient, image_id: str, output: Path, into_folder: bool, force: bool
) -> Path:
    with client.download(image_id) as response:
        target = filename_in(output, response, image_id) if into_folder else output
        save(response.iter_bytes(), target, overwrite=force)
    return target


def _download_folder(output: str | None, image_ids: tuple[str, ...]) -> bool:
    """Whether the downloads go into a folder (named by the server) rather than to one file."""
    if output is None or output.endswith(("/", os.sep)) or Path(output).is_dir():
        return True
    if len(image_ids) == 1:
        return False
    if Path(output).exists():
        raise click.UsageError(f"{output} is a file: with several ids, -o names a folder")
    return True


@click.command()
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help=(
        "A file (one id), or a folder (one that exists, a name ending in /, or any name with "
        "several ids) where files get the image's name [default: .]"
    ),
)
@click.option("-f", "--force", is_flag=True, help="Overwrite files that exist")
@server_options
def download(
    image_ids: tuple[str, ...], output: str | None, force: bool, url: str, token: str | None
) -> None:
    """Download images' original bytes. Prints `IMAGE_ID  PATH` for each file written."""
    into_folder = _download_folder(output, image_ids)
    folder_or_file = Path(output or ".")
    if into_folder:
        folder_or_file.mkdir(parents=True, exist_ok=True)
    failed = _each(
        image_ids,
        lambda image_id, client: _download_one(
            client, image_id, folder_or_file, into_folder, force
        ),
        url,
        token,
    )
    if failed:
        sys.exit(1)


@click.command("rm")
@click.argument("image_ids", metavar="ID...", nargs=-1, required=True)
@server_options
def remove(image_ids: tuple[str, ...], url: str, token: str | None) -> None:
    """Delete images (yours only)."""
    failed = _each(image_ids, lambda image_id, client: client.delete(image_id), url, token)
    if failed:
        sys.exit(1)


def _each(
    image_ids: tuple[str, ...],
    action: Callable[[str, ImagecoreClient], Path | None],
    url: str,
    token: str | None,
) -> bool:
    """Run ``action`` on each id, printing `ID  RESULT` or the error; whether any failed."""
    failures: list[ClientError] = []
    with ImagecoreClient(url, token) as client:
        for image_id in image_ids:
            try:
                result = action(image_id, client)
            except (ClientError, OSError) as exc:
                error = exc if isinstance(exc, ClientError) else ClientError(str(exc))
                failures.append(error)
                click.echo(f"error: {image_id}: {error}", err=True)
            else:
                click.echo(f"{image_id}  {result or 'deleted'}")
    if any(failure.unauthenticated for failure in failures):
        click.echo(UNAUTHENTICATED_HINT, err=True)
    return bool(failures)


CLIENT_COMMANDS = (upload, list_images, get, download, remove)
