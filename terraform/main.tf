# imagecore on AWS (or LocalStack / moto server with tflocal): the metadata table, the image
# bucket, the job queue with its worker and reconcile functions, and the HTTP API.
#
# The names the code uses (IMAGECORE_TABLE, IMAGECORE_BUCKET, IMAGECORE_QUEUE_URL) come from
# here, once: every function gets them in its environment and `output.imagecore_environment`
# hands them to a local .env, so nothing is typed twice.

provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Application = "imagecore"
        NamePrefix  = var.name_prefix
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}

# CloudFront's web ACL (WAF, scope CLOUDFRONT) and its log group must be made in us-east-1,
# whatever var.region is: the edge module gets this provider. Same tags as the default one.
provider "aws" {
  alias  = "us_east_1"
  region = "us-east-1"

  default_tags {
    tags = merge(
      {
        Application = "imagecore"
        NamePrefix  = var.name_prefix
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The secret that signs pagination cursors (and the service's other HMACs) lives in SSM
# Parameter Store as a SecureString, and nowhere else: the functions get the parameter's name
# and read its value when they start. Terraform writes it through a write-only argument
# (value_wo, Terraform 1.11), so neither the state nor a plan holds it; a generated one comes
# from an ephemeral resource, which is never stored either. It is written on create and again
# whenever cursor_secret_version changes, never on other applies.
ephemeral "aws_secretsmanager_random_password" "cursor_secret" {
  count = var.cursor_secret == null ? 1 : 0

  password_length     = 64
  exclude_punctuation = true # letters and digits: no quoting trouble in a shell or a .env
}

resource "aws_ssm_parameter" "token_secret" {
  #checkov:skip=CKV_AWS_337: The AWS managed key alias/aws/ssm by default, which every role allowed ssm:GetParameter on this one parameter may decrypt with and no other account can use; var.kms_key_arn picks a customer managed key instead.
  name        = "/${var.name_prefix}/token-secret"
  description = "imagecore: the secret that signs pagination cursors (IMAGECORE_TOKEN_SECRET_PARAMETER names it)"
  type        = "SecureString"
  key_id      = var.kms_key_arn

  value_wo         = var.cursor_secret != null ? var.cursor_secret : ephemeral.aws_secretsmanager_random_password.cursor_secret[0].random_password
  value_wo_version = var.cursor_secret_version

  lifecycle {
    precondition {
      condition     = var.cursor_secret == null || length(coalesce(var.cursor_secret, "unset")) >= 32
      error_message = "cursor_secret must be at least 32 characters long (or null, to generate one)."
    }
  }
}

# The value of the header CloudFront adds to every request it sends the API (modules/edge), which
# the API function requires (IMAGECORE_ORIGIN_VERIFY_SECRET): made once like the cursor secret.
# `terraform apply -replace=terraform_data.origin_verify_secret` changes it (CloudFront and the
# function are updated in the same apply; requests in flight meanwhile may be refused).
resource "terraform_data" "origin_verify_secret" {
  input = "${replace(uuid(), "-", "")}${replace(uuid(), "-", "")}"

  lifecycle {
    ignore_changes = [input]
  }
}

locals {
  lambda_zip = coalesce(var.lambda_zip, "${path.module}/../dist/imagecore-lambda.zip")

  # Globally unique, and the same on every apply to one account and region.
  bucket_name = "${var.name_prefix}-images-${data.aws_caller_identity.current.account_id}-${var.region}"

  # The service's settings (src/entrypoints/settings.py), with the secret's parameter name but
  # never the secret: the one map that every function's environment and the
  # imagecore_environment output are made from.
  # AWS_REGION is not here: Lambda reserves it (and sets it itself).
  #
  # The queue URL comes from modules/queue, which no function module contains: the API and the
  # worker both send to it, so it could live in neither without its URL flowing out of a module
  # and back into the same module's environment.
  imagecore_environment = {
    IMAGECORE_BACKEND                 = "aws"
    IMAGECORE_TABLE                   = module.metadata.table_name
    IMAGECORE_BUCKET                  = module.storage.bucket_name
    IMAGECORE_QUEUE_URL               = module.queue.queue_url
    IMAGECORE_URL_TTL_SECONDS         = tostring(var.url_ttl_seconds)
    IMAGECORE_MAX_DIRECT_UPLOAD_BYTES = tostring(var.max_direct_upload_bytes)
    IMAGECORE_MAX_IMAGE_PIXELS        = tostring(var.max_image_pixels)
    IMAGECORE_THUMBNAIL_ATTEMPTS      = tostring(var.thumbnail_attempts)
    IMAGECORE_PUBLIC_TIMELINE_SHARDS  = tostring(var.public_timeline_shards)
    IMAGECORE_TOKEN_SECRET_PARAMETER  = aws_ssm_parameter.token_secret.name
  }

  # The CDN for image bytes (modules/media) is on once an operator has made its signing key
  # (`imagecore cdn-key`) and given its public half. The private half stays in its SSM parameter:
  # the API function gets the parameter's name and may read that one parameter.
  cdn                       = var.cdn_public_key != null
  cdn_private_key_parameter = coalesce(var.cdn_private_key_parameter, "/${var.name_prefix}/cdn-signing-key")
  cdn_private_key_parameter_arn = join(":", [
    "arn", data.aws_partition.current.partition, "ssm", var.region,
    data.aws_caller_identity.current.account_id, "parameter${local.cdn_private_key_parameter}",
  ])
  # Only the API hands out download links: the worker and reconcile neither get these settings
  # nor may read the key.
  cdn_environment = local.cdn ? {
    IMAGECORE_CDN_DOMAIN                = module.media[0].domain_name
    IMAGECORE_CDN_KEY_ID                = module.media[0].public_key_id
    IMAGECORE_CDN_PRIVATE_KEY_PARAMETER = local.cdn_private_key_parameter
  } : {}

  # The SQS queue name in a queue's ARN (arn:aws:sqs:<region>:<account>:<name>): its metrics'
  # dimension.
  dead_letter_queue_name = element(split(":", module.queue.dead_letter_queue_arn), 5)
}

module "metadata" {
  source = "./modules/metadata"

  table_name             = "${var.name_prefix}-images"
  point_in_time_recovery = var.point_in_time_recovery
  deletion_protection    = var.deletion_protection
  kms_key_arn            = var.kms_key_arn
}

module "storage" {
  source = "./modules/storage"

  bucket_name                        = local.bucket_name
  notification_queue_arn             = module.queue.notification_queue_arn
  noncurrent_version_expiration_days = var.noncurrent_version_expiration_days
  force_destroy                      = var.force_destroy
  require_tls                        = var.require_tls
  upload_cors_origins                = var.upload_cors_origins
  archive_originals_after_days       = var.archive_originals_after_days
  cloudfront_reads                   = local.cdn
  cloudfront_distribution_arn        = local.cdn ? module.media[0].distribution_arn : null
  # The bucket keeps SSE-S3 whatever var.kms_key_arn says: the service asks for AES256 on
  # every put (src/adapters/s3.py), so a KMS default would not reach its objects.
}

# The job queue: S3 announces direct uploads to it, the API and the worker send thumbnail jobs
# to it, the worker consumes it. Its policy names the bucket and the bucket's notification names
# it; Terraform orders the resources (bucket, queue policy, notification) across the modules.
module "queue" {
  source = "./modules/queue"

  name_prefix                = var.name_prefix
  bucket_arn                 = module.storage.bucket_arn
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds # AWS's advice for a Lambda source
  max_receive_count          = var.max_receive_count
  thumbnail_attempts         = var.thumbnail_attempts
  require_tls                = var.require_tls
}

# The queue was part of modules/processing: an existing deployment keeps its queues (and the
# jobs waiting in them) instead of having them replaced.
moved {
  from = module.processing.aws_sqs_queue.dead_letter
  to   = module.queue.aws_sqs_queue.dead_letter
}

moved {
  from = module.processing.aws_sqs_queue.jobs
  to   = module.queue.aws_sqs_queue.jobs
}

moved {
  from = module.processing.aws_sqs_queue_redrive_policy.jobs
  to   = module.queue.aws_sqs_queue_redrive_policy.jobs
}

moved {
  from = module.processing.aws_sqs_queue_policy.jobs
  to   = module.queue.aws_sqs_queue_policy.jobs
}

module "processing" {
  source = "./modules/processing"

  name_prefix  = var.name_prefix
  lambda_zip   = local.lambda_zip
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture
  environment  = local.imagecore_environment
  kms_key_arn  = var.kms_key_arn
  tracing_mode = var.lambda_tracing_mode

  table_arn  = module.metadata.table_arn
  index_arns = module.metadata.index_arns
  bucket_arn = module.storage.bucket_arn
  queue_arn  = module.queue.queue_arn

  worker_timeout_seconds        = var.worker_timeout_seconds
  reconcile_schedule_expression = var.reconcile_schedule_expression
  log_retention_days            = var.log_retention_days
  json_logs                     = var.lambda_json_logs
  log_level                     = var.lambda_log_level
  secret_parameter_arn          = aws_ssm_parameter.token_secret.arn
}

module "api" {
  source = "./modules/api"

  name_prefix  = var.name_prefix
  lambda_zip   = local.lambda_zip
  runtime      = var.lambda_runtime
  architecture = var.lambda_architecture
  kms_key_arn  = var.kms_key_arn
  tracing_mode = var.lambda_tracing_mode
  environment = merge(
    local.imagecore_environment,
    { IMAGECORE_MAX_UPLOAD_BYTES = tostring(var.api_max_upload_bytes) },
    # With the edge, only requests that came through CloudFront (and so through WAF) are served.
    var.edge ? { IMAGECORE_ORIGIN_VERIFY_SECRET = terraform_data.origin_verify_secret.output } : {},
    # With the CDN, downloads are links signed for it (the key's name, never the key).
    local.cdn_environment,
  )

  table_arn  = module.metadata.table_arn
  index_arns = module.metadata.index_arns
  bucket_arn = module.storage.bucket_arn
  queue_arn  = module.queue.queue_arn

  jwt_issuer             = var.jwt_issuer
  jwt_audience           = var.jwt_audience
  throttling_burst_limit = var.throttling_burst_limit
  throttling_rate_limit  = var.throttling_rate_limit
  log_retention_days     = var.log_retention_days
  json_logs              = var.lambda_json_logs
  log_level              = var.lambda_log_level
  secret_parameter_arn   = aws_ssm_parameter.token_secret.arn

  signing_key_parameter_arn = local.cdn ? local.cdn_private_key_parameter_arn : null
}

module "alarms" {
  source = "./modules/alarms"

  name_prefix                   = var.name_prefix
  alarm_email                   = var.alarm_email
  api_id                        = module.api.api_id
  function_names                = merge({ api = module.api.function_name }, module.processing.function_names)
  dead_letter_queue_name        = local.dead_letter_queue_name
  reconcile_failures_queue_name = module.processing.reconcile_failures_queue_name
  table_name                    = module.metadata.table_name
  index_names                   = module.metadata.index_names

  period_seconds               = var.alarm_period_seconds
  api_5xx_threshold            = var.alarm_api_5xx_threshold
  lambda_errors_threshold      = var.alarm_lambda_errors_threshold
  lambda_throttles_threshold   = var.alarm_lambda_throttles_threshold
  dynamodb_throttles_threshold = var.alarm_dynamodb_throttles_threshold
}

# The API's front door: CloudFront with a WAF web ACL that limits each bearer token's request
# rate, and each anonymous IP address's (the stage's throttle counts all callers together).
module "edge" {
  source = "./modules/edge"
  count  = var.edge ? 1 : 0

  providers = {
    aws = aws.us_east_1
  }

  name_prefix               = var.name_prefix
  origin_url                = module.api.api_url
  origin_verify_secret      = terraform_data.origin_verify_secret.output
  per_user_request_limit    = var.per_user_request_limit
  anonymous_request_limit   = var.anonymous_request_limit
  rate_limit_window_seconds = var.rate_limit_window_seconds
  price_class               = var.edge_price_class
  domain_names              = var.edge_domain_names
  certificate_arn           = var.edge_certificate_arn
  log_retention_days        = var.log_retention_days
}

# Image bytes through CloudFront (signed URLs only, cached at the edge and in browsers); off
# until cdn_public_key is given. See modules/media for why it is not part of the edge module.
module "media" {
  source = "./modules/media"
  count  = local.cdn ? 1 : 0

  name_prefix                 = var.name_prefix
  bucket_regional_domain_name = module.storage.bucket_regional_domain_name
  public_key                  = var.cdn_public_key
  price_class                 = var.cdn_price_class
  domain_names                = var.cdn_domain_names
  certificate_arn             = var.cdn_certificate_arn
}
