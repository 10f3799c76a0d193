"""Downloads through CloudFront: the links are signed URLs (canned policy) that CloudFront
verifies with the public key of its trusted key group, the same for every caller within a
window of the TTL; a download's link asks S3 for the image's type and file name, under the
signature. The aws backend hands them out instead of S3 presigned URLs exactly when the CDN
settings are given, reading the private key from its SSM parameter."""

from __future__ import annotations

import base64
import re
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from click.testing import CliRunner
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from moto import mock_aws

from adapters.cloudfront import CloudFrontKeyError, CloudFrontLinks, new_signing_key
from adapters.errors import MissingResource
from adapters.s3 import S3BlobStore
from entrypoints.cli import main
from entrypoints.container import build_container
from entrypoints.settings import Settings, SettingsError
from imagecore.disposition import attachment_disposition
from tests.support.fake_aws import REGION, moto_server, unique_name

DOMAIN = "d111111abcdef8.cloudfront.net"
KEY_ID = "K2JCJMDEHXQW5F"
PARAMETER = "/imagecore/cdn-signing-key"
NOW = datetime(2026, 12, 6, 12, 0, 7, tzinfo=UTC)
TTL = timedelta(seconds=900)


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return new_signing_key()


def links(private_pem: str, now: datetime = NOW) -> CloudFrontLinks:
    return CloudFrontLinks(DOMAIN, KEY_ID, private_pem, clock=lambda: now)


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query, strict_parsing=True))


CLOUDFRONT_PARAMETERS = ("Expires", "Signature", "Key-Pair-Id")


def without_cloudfront_parameters(url: str) -> str:
    """The URL as a canned policy names it, and as CloudFront forwards it: its own query, if
    any, without the three parameters of the signature (which botocore appends last)."""
    parts = urllib.parse.urlsplit(url)
    kept = [
        field
        for field in parts.query.split("&")
        if field.split("=", 1)[0] not in CLOUDFRONT_PARAMETERS
    ]
    return urllib.parse.urlunsplit(parts._replace(query="&".join(kept)))


def verify(url: str, public_pem: str) -> None:
    """What CloudFront does with a canned-policy URL, written from its documentation: the policy
    is rebuilt from the URL without the signature's parameters and with the expiry, and the
    signature (base64 with -, _ and ~ for +, = and /) must be the key's RSA-SHA1 signature of
    it."""
    fields = query(url)
    resource = without_cloudfront_parameters(url)
    condition = f'{{"DateLessThan":{{"AWS:EpochTime":{fields["Expires"]}}}}}'
    policy = f'{{"Statement":[{{"Resource":"{resource}","Condition":{condition}}}]}}'
    signature = base64.b64decode(
        fields["Signature"].replace("-", "+").replace("_", "=").replace("~", "/")
    )
    public_key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())


def test_a_link_verifies_with_the_public_key_and_names_it(key_pair: tuple[str, str]) -> None:
    private_pem, public_pem = key_pair
    url = links(private_pem).url("images/alice/01JABC", TTL)

    assert url.startswith(f"https://{DOMAIN}/images/alice/01JABC?")
    assert set(query(url)) == {"Expires", "Signature", "Key-Pair-Id"}
    assert query(url)["Key-Pair-Id"] == KEY_ID
    verify(url, public_pem)


def test_a_link_does_not_verify_for_another_object_or_another_expiry(
    key_pair: tuple[str, str],
) -> None:
    private_pem, public_pem = key_pair
    url = links(private_pem).url("images/alice/01JABC", TTL)
    expires = query(url)["Expires"]

    with pytest.raises(InvalidSignature):
        verify(url.replace("01JABC", "01JXYZ"), public_pem)
    with pytest.raises(InvalidSignature):
        verify(url.replace(f"Expires={expires}", f"Expires={int(expires) + 900}"), public_pem)
    with pytest.raises(InvalidSignature):
        verify(url, new_signing_key()[1])


def test_every_caller_within_a_window_gets_the_same_link_living_one_to_two_ttls(
    key_pair: tuple[str, str],
) -> None:
    private_pem, _ = key_pair
    window_start = datetime.fromtimestamp(1_800_000_000 // 900 * 900, UTC)
    within = [window_start + timedelta(seconds=s) for s in (0.5, 1, 450, 899.9)]
    urls = {links(private_pem, now).url("images/alice/01JABC", TTL) for now in within}
    assert len(urls) == 1

    (url,) = urls
    expires = datetime.fromtimestamp(int(query(url)["Expires"]), UTC)
    assert int(expires.timestamp()) % 900 == 0
    for now in within:
        assert TTL <= expires - now < 2 * TTL
    after = links(private_pem, window_start + TTL + timedelta(seconds=1)).url(
        "images/alice/01JABC", TTL
    )
    assert query(after)["Expires"] == str(int(expires.timestamp()) + 900)


def test_a_link_may_ask_for_the_type_and_disposition_and_the_signature_covers_them(
    key_pair: tuple[str, str],
) -> None:
    private_pem, public_pem = key_pair
    disposition = (
        "attachment; filename=\"Strand_.jpg\"; filename*=UTF-8''Strand%20%C3%A9t%C3%A9.jpg"
    )
    url = links(private_pem).url(
        "images/alice/01JABC", TTL, content_type="image/jpeg", content_disposition=disposition
    )

    assert url.startswith(f"https://{DOMAIN}/images/alice/01JABC?response-content-disposition="), (
        "S3's parameters first, in one order, then the signature's"
    )
    fields = query(url)
    assert fields["response-content-type"] == "image/jpeg"
    assert fields["response-content-disposition"] == disposition
    verify(url, public_pem)
    # Another name or type for the file is another URL, which the signature does not cover.
    with pytest.raises(InvalidSignature):
        verify(url.replace("Strand_.jpg", "invoice.html"), public_pem)
    with pytest.raises(InvalidSignature):
        verify(url.replace("image%2Fjpeg", "text%2Fhtml"), public_pem)
    # Nor the object without them (served as stored: as binary/octet-stream, with no name).
    bare = url.split("?")[0] + "?" + url[url.index("Expires=") :]
    with pytest.raises(InvalidSignature):
        verify(bare, public_pem)


def test_a_key_with_characters_urls_escape_is_signed_as_requested(
    key_pair: tuple[str, str],
) -> None:
    private_pem, public_pem = key_pair
    url = links(private_pem).url("images/al ice%25/01JABC/thumb", TTL)
    assert url.startswith(f"https://{DOMAIN}/images/al%20ice%2525/01JABC/thumb?")
    verify(url, public_pem)


def test_keys_cloudfront_cannot_verify_are_refused_without_echoing_them() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    elliptic = ec.generate_private_key(ec.SECP256R1())
    for key in (small, elliptic):
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(CloudFrontKeyError, match="RSA key of 2048 bits"):
            links(pem)
    garbage = "-----BEGIN PRIVATE KEY-----\nnot-a-key-at-all\n-----END PRIVATE KEY-----\n"
    with pytest.raises(CloudFrontKeyError, match="not an unencrypted PEM") as refused:
        links(garbage)
    assert "not-a-key-at-all" not in str(refused.value)


@pytest.mark.parametrize("domain", ["https://d111.cloudfront.net", "d111.cloudfront.net/x", ""])
def test_a_domain_that_is_not_a_host_name_is_refused(
    key_pair: tuple[str, str], domain: str
) -> None:
    with pytest.raises(CloudFrontKeyError, match="host name"):
        CloudFrontLinks(domain, KEY_ID, key_pair[0])


# --- settings and wiring -------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[str]:
    """moto in-process with a bucket; its name."""
    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="images")
        yield "images"


def aws_settings(bucket: str, **cdn: str) -> Settings:
    return Settings(
        backend="aws",
        table="images",
        bucket=bucket,
        token_secret="s" * 32,
        aws_region=REGION,
        **cdn,  # type: ignore[arg-type]
    )


CDN = {"cdn_domain": DOMAIN, "cdn_key_id": KEY_ID, "cdn_private_key_parameter": PARAMETER}


def test_with_the_cdn_settings_renditions_are_cloudfront_links_signed_with_the_ssm_key(
    aws: str, key_pair: tuple[str, str]
) -> None:
    private_pem, public_pem = key_pair
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=PARAMETER, Value=private_pem, Type="SecureString"
    )
    blobs = build_container(aws_settings(aws, **CDN)).blobs()
    rendition = "images/alice/01JABC/renditions/preview-1440x960.webp"

    url = blobs.presigned_get(rendition, TTL, "beach-preview.webp", "image/webp", as_stored=True)
    original = blobs.presigned_get("images/alice/01JABC", TTL, "beach.jpg", "image/jpeg")

    # A rendition is served as stored: one link whatever it is saved as.
    assert url is not None
    assert url.startswith(f"https://{DOMAIN}/{rendition}?")
    assert set(query(url)) == set(CLOUDFRONT_PARAMETERS)
    assert query(url)["Key-Pair-Id"] == KEY_ID
    verify(url, public_pem)
    # An original is stored without its type and name: its link asks S3 for them.
    assert original is not None
    assert original.startswith(f"https://{DOMAIN}/images/alice/01JABC?")
    fields = query(original)
    assert fields["response-content-type"] == "image/jpeg"
    assert fields["response-content-disposition"] == attachment_disposition("beach.jpg")
    verify(original, public_pem)


def test_what_cloudfront_forwards_of_a_download_link_has_s3_answer_with_type_and_name(
    key_pair: tuple[str, str],
) -> None:
    """The distribution's side, short of CloudFront itself (which moto cannot make): it checks
    the signature, drops its parameters, keeps what the cache policy keys on (S3's two) and
    sends the request to the bucket signed with SigV4 (origin access control). S3 (moto server)
    must then answer with the image's type and file name, though the original was stored with
    neither."""
    server = moto_server()
    clients = server.clients()
    bucket = unique_name("bucket")
    clients.s3.create_bucket(Bucket=bucket)
    name = "images/alice/01JABC"
    clients.s3.put_object(Bucket=bucket, Key=name, Body=b"\xff\xd8 the bytes")
    private_pem, public_pem = key_pair
    store = S3BlobStore(clients.s3, bucket, links=links(private_pem))
    try:
        url = store.presigned_get(name, TTL, "Strand été.jpg", "image/jpeg")
        assert url is not None
        verify(url, public_pem)

        forwarded = urllib.parse.urlsplit(without_cloudfront_parameters(url))
        origin_url = f"{server.url}/{bucket}{forwarded.path}?{forwarded.query}"
        request = AWSRequest(method="GET", url=origin_url)
        SigV4Auth(boto3.Session().get_credentials(), "s3", REGION).add_auth(request)
        answer = httpx.get(origin_url, headers=dict(request.headers.items()))

        assert answer.status_code == 200
        assert answer.content == b"\xff\xd8 the bytes"
        assert answer.headers["content-type"] == "image/jpeg"
        assert answer.headers["content-disposition"] == attachment_disposition("Strand été.jpg")
    finally:
        clients.s3.delete_object(Bucket=bucket, Key=name)
        clients.s3.delete_bucket(Bucket=bucket)


def test_without_them_downloads_are_s3_presigned_urls_that_name_the_file(aws: str) -> None:
    blobs = build_container(aws_settings(aws)).blobs()

    url = blobs.presigned_get("images/alice/01JABC", TTL, "beach.jpg", "image/jpeg")

    assert url is not None
    assert DOMAIN not in url
    fields = query(url)
    assert "X-Amz-Signature" in fields
    assert fields["response-content-type"] == "image/jpeg"
    assert "beach.jpg" in fields["response-content-disposition"]


def test_a_missing_key_parameter_stops_the_start_naming_it_and_the_setting(aws: str) -> None:
    container = build_container(aws_settings(aws, **CDN))
    with pytest.raises(
        MissingResource,
        match=re.escape(f"'{PARAMETER}'") + r".*IMAGECORE_CDN_PRIVATE_KEY_PARAMETER.*cdn-key",
    ):
        container.blobs()


def test_a_parameter_holding_no_usable_key_stops_the_start(aws: str) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=PARAMETER, Value="not a key", Type="SecureString"
    )
    with pytest.raises(SettingsError, match="IMAGECORE_CDN_PRIVATE_KEY_PARAMETER"):
        build_container(aws_settings(aws, **CDN)).blobs()


def test_the_cdn_settings_come_together_and_on_aws_only() -> None:
    environ = {
        "IMAGECORE_BACKEND": "aws",
        "IMAGECORE_TABLE": "t",
        "IMAGECORE_BUCKET": "b",
        "IMAGECORE_CDN_DOMAIN": DOMAIN,
    }
    with pytest.raises(SettingsError, match="IMAGECORE_CDN_KEY_ID and"):
        Settings.from_env(environ)
    complete = {
        **environ,
        "IMAGECORE_CDN_KEY_ID": KEY_ID,
        "IMAGECORE_CDN_PRIVATE_KEY_PARAMETER": PARAMETER,
    }
    settings = Settings.from_env(complete)
    assert (settings.cdn_domain, settings.cdn_key_id, settings.cdn_private_key_parameter) == (
        DOMAIN,
        KEY_ID,
        PARAMETER,
    )
    with pytest.raises(SettingsError, match="needs IMAGECORE_BACKEND=aws"):
        Settings.from_env({**complete, "IMAGECORE_BACKEND": "memory"})
    with pytest.raises(SettingsError, match="host name"):
        Settings.from_env({**complete, "IMAGECORE_CDN_DOMAIN": f"https://{DOMAIN}/"})


# --- the key's bootstrap -------------------------------------------------------------------------


@mock_aws
def test_cdn_key_keeps_the_private_key_in_ssm_and_prints_only_the_public_key() -> None:
    runner = CliRunner()
    made = runner.invoke(main, ["cdn-key", "--parameter", PARAMETER])
    assert made.exit_code == 0, made.output

    parameter = boto3.client("ssm", region_name=REGION).get_parameter(
        Name=PARAMETER, WithDecryption=True
    )["Parameter"]
    assert parameter["Type"] == "SecureString"
    public_pem = made.stdout
    assert public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "PRIVATE" not in made.output
    url = links(parameter["Value"]).url("images/alice/01JABC", TTL)
    verify(url, public_pem)

    again = runner.invoke(main, ["cdn-key", "--parameter", PARAMETER])
    assert again.exit_code == 1
    assert "exists already" in again.output
    assert "--overwrite" in again.output
    replaced = runner.invoke(main, ["cdn-key", "--parameter", PARAMETER, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert replaced.stdout != public_pem


def test_the_public_key_is_what_cloudfront_takes_an_rsa_2048_spki_pem() -> None:
    _, public_pem = new_signing_key()
    public_key = serialization.load_pem_public_key(public_pem.encode())
    assert isinstance(public_key, rsa.RSAPublicKey)
    assert public_key.key_size == 2048
