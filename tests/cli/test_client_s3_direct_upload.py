"""The client's direct upload on the aws backend: the slot is an S3 presigned POST (on the moto
server), which the client fills in with its own multipart body. S3 answers with no image: the
worker Lambda makes it (tests/aws/test_lambda_worker.py), and no worker runs here, so the client
is seen waiting for it in vain."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from entrypoints.client.api import ClientError, ImagecoreClient, Slot, UploadFields
from entrypoints.client.uploads import LocalFile
from tests.support.api_client import Api
from tests.support.backend_server import running_server
from tests.support.fake_aws import moto_server
from tests.support.sample_images import large_png


def test_a_file_posted_to_an_s3_presigned_post_lands_whole_under_the_slots_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(large_png(300 * 1024))
    with running_server("aws", tmp_path) as server:
        api = Api(server)
        user = f"ivy-{secrets.token_hex(4)}"
        with ImagecoreClient(server.url, api.token(user)) as client:
            file = LocalFile.read(path)
            slot = client.create_slot(UploadFields(title="S3"), path.name, "image/png", file.size)
            assert isinstance(slot, Slot), slot
            assert slot.url.startswith(moto_server().url)
            counted: list[int] = []
            form = file.form({**slot.fields, "Content-Type": "image/png"}, counted.append)

            assert client.post_to_slot(slot, form) is None  # S3: 204, no image

            stored = (
                moto_server()
                .clients()
                .s3.get_object(Bucket=server.environ["IMAGECORE_BUCKET"], Key=slot.fields["key"])
            )
            assert stored["Body"].read() == path.read_bytes()
            assert stored["ContentType"] == "image/png"
            assert sum(counted) == file.size
            with pytest.raises(ClientError, match=r"no image came of it within 0\.5 s"):
                client.wait_for_image(slot, 0.5)
        api.client.close()
