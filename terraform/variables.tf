variable "region" {
  description = "AWS region of everything."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (table <prefix>-images, functions <prefix>-api, ...)."
  type        = string
  default     = "imagecore"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,22}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-24 lowercase letters, digits and hyphens, starting with a letter (it is part of the bucket name)."
  }
}

variable "tags" {
  description = "Extra tags for every resource (added to the provider's default tags)."
  type        = map(string)
  default     = {}
}

variable "lambda_zip" {
  description = "Path of the deployment zip of every function (the code and its dependencies for the Lambda runtime); null means ../dist/imagecore-lambda.zip next to this directory."
  type        = string
  default     = null
}

variable "lambda_runtime" {
  description = "Lambda runtime of the functions."
  type        = string
  default     = "python3.12"
}

variable "lambda_architecture" {
  description = "Instruction set of the functions: x86_64 or arm64; must match the native wheels (Pillow) in the zip."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "lambda_tracing_mode" {
  description = "X-Ray tracing of the functions: Active or PassThrough."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.lambda_tracing_mode)
    error_message = "lambda_tracing_mode must be Active or PassThrough."
  }
}

variable "jwt_issuer" {
  description = "Issuer (iss) of the bearer tokens the API accepts. The default only makes a local (LocalStack, moto) deployment work: set your identity provider's issuer for real AWS, whose OpenID discovery document API Gateway must be able to fetch."
  type        = string
  default     = "https://auth.example.com/"

  validation {
    condition     = startswith(var.jwt_issuer, "https://")
    error_message = "jwt_issuer must be an https URL."
  }
}

variable "jwt_audience" {
  description = "Audiences (aud, or client_id for access tokens) the API accepts. The default only suits a local deployment: set your identity provider's client ids for real AWS."
  type        = list(string)
  default     = ["imagecore"]

  validation {
    condition     = length(var.jwt_audience) > 0
    error_message = "jwt_audience needs at least one audience."
  }
}

variable "api_max_upload_bytes" {
  description = "Largest upload through POST /images (IMAGECORE_MAX_UPLOAD_BYTES of the API function). API Gateway and Lambda cap a request at 10 MB and 6 MB (less after base64): bigger files go through POST /uploads, straight to S3."
  type        = number
  default     = 4194304

  validation {
    condition     = var.api_max_upload_bytes >= 1 && var.api_max_upload_bytes <= 4500000
    error_message = "api_max_upload_bytes must be between 1 and 4500000: Lambda's 6 MB payload limit applies to the base64 body."
  }
}

variable "max_direct_upload_bytes" {
  description = "Largest upload through POST /uploads, straight to S3 with a presigned POST (IMAGECORE_MAX_DIRECT_UPLOAD_BYTES); the default is 500 MiB. The worker copies an upload this big from uploads/ to images/ within worker_timeout_seconds: raise that with it."
  type        = number
  default     = 524288000

  validation {
    condition     = var.max_direct_upload_bytes >= 1 && var.max_direct_upload_bytes <= 5368709120 && floor(var.max_direct_upload_bytes) == var.max_direct_upload_bytes
    error_message = "max_direct_upload_bytes must be a whole number between 1 and 5368709120 (5 GiB, the most one S3 POST uploads)."
  }
}

variable "max_image_pixels" {
  description = "Most pixels (width x height) of an image the service accepts and decodes (IMAGECORE_MAX_IMAGE_PIXELS): bounds the worker's memory for a thumbnail, about 4 bytes a pixel, against decompression bombs."
  type        = number
  default     = 100000000

  validation {
    condition     = var.max_image_pixels >= 1 && floor(var.max_image_pixels) == var.max_image_pixels
    error_message = "max_image_pixels must be a whole number of at least 1."
  }
}

variable "public_timeline_shards" {
  description = "DynamoDB partitions each public timeline is spread over (IMAGECORE_PUBLIC_TIMELINE_SHARDS): public uploads per second are bounded by about 1,000 per shard; a public list reads every shard. Only ever raise it: an image stays on the shard its id chose."
  type        = number
  default     = 4

  validation {
    condition     = var.public_timeline_shards >= 1 && var.public_timeline_shards <= 64 && floor(var.public_timeline_shards) == var.public_timeline_shards
    error_message = "public_timeline_shards must be a whole number from 1 to 64."
  }
}

variable "thumbnail_attempts" {
  description = "Receives of a thumbnail job after which the worker marks the thumbnail failed (IMAGECORE_THUMBNAIL_ATTEMPTS); max_receive_count must be greater."
  type        = number
  default     = 3

  validation {
    condition     = var.thumbnail_attempts >= 1 && var.thumbnail_attempts <= 10 && floor(var.thumbnail_attempts) == var.thumbnail_attempts
    error_message = "thumbnail_attempts must be a whole number between 1 and 10."
  }
}

variable "upload_cors_origins" {
  description = "Origins of browser pages, e.g. https://app.example.com, allowed to POST presigned upload forms and PUT the parts of upload sessions to the bucket (S3 CORS); [] (the default) adds no CORS configuration: uploads from a page on another origin are then refused by the browser."
  type        = list(string)
  default     = []

  validation {
    # S3 compares the Origin header as written: a path or a trailing "/" would never match.
    condition     = alltrue([for origin in var.upload_cors_origins : can(regex("^https?://[A-Za-z0-9*.-]+(:[0-9]{1,5})?$", origin))])
    error_message = "upload_cors_origins must be origins such as https://app.example.com or http://localhost:5173: scheme, host and optional port, no path or trailing slash."
  }
}

variable "url_ttl_seconds" {
  description = "Lifetime of presigned download and upload URLs, and of the CDN's signed links (IMAGECORE_URL_TTL_SECONDS)."
  type        = number
  default     = 900

  validation {
    condition     = var.url_ttl_seconds >= 1 && var.url_ttl_seconds <= 604800
    error_message = "url_ttl_seconds must be between 1 and 604800 (S3's limit for presigned URLs)."
  }
}

variable "cursor_secret" {
  description = "Secret that signs pagination cursors, at least 32 characters, written to the SSM parameter /<name_prefix>/token-secret and never to the state; null generates one. It is written when the parameter is made and whenever cursor_secret_version changes. Changing it invalidates every cursor handed out."
  type        = string
  default     = null
  sensitive   = true
  # Its length is checked by a precondition in main.tf: a failed variable validation would
  # print the value (Terraform 1.11), a precondition does not.
}

variable "cursor_secret_version" {
  description = "Version of the token secret's value: raise it to write cursor_secret (or a newly generated secret) to the parameter again, e.g. to rotate it. Terraform keeps no copy of the value to compare, so it writes only when this changes."
  type        = number
  default     = 1

  validation {
    condition     = var.cursor_secret_version >= 1 && floor(var.cursor_secret_version) == var.cursor_secret_version
    error_message = "cursor_secret_version must be a whole number of at least 1."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the table, the functions' environment and the token secret's parameter; null uses AWS managed keys. The functions are allowed kms:Decrypt and kms:GenerateDataKey on it."
  type        = string
  default     = null
}

variable "require_tls" {
  description = "Deny requests to the bucket and the job queue that do not use TLS. Keep true on AWS; set false only against moto server, whose endpoint is plain http and which enforces the bucket policy (LocalStack does not enforce it by default)."
  type        = bool
  default     = true
}

variable "point_in_time_recovery" {
  description = "Keep continuous backups of the table for point-in-time recovery."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the table while this is on. On by default: set it false (and force_destroy true) only to destroy a throwaway deployment."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let terraform destroy empty the bucket (every object version) and delete it. For throwaway deployments only."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted image versions are removed from the bucket."
  type        = number
  default     = 30
}

variable "archive_originals_after_days" {
  description = "Days after which an original image (over 128 KiB) moves to S3 Glacier Instant Retrieval, which still serves downloads at once (no restore); null keeps everything in STANDARD."
  type        = number
  default     = 90
}

variable "max_receive_count" {
  description = "Deliveries of a job before it moves to the dead-letter queue; must be greater than thumbnail_attempts (checked when planning), so that the worker records a thumbnail's failure first."
  type        = number
  default     = 5
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker function; the job queue's visibility timeout is six times this. It must cover copying a direct upload of max_direct_upload_bytes."
  type        = number
  default     = 60
}

variable "reconcile_schedule_expression" {
  description = "EventBridge schedule of the reconcile function, e.g. rate(1 hour) or cron(0 3 * * ? *)."
  type        = string
  default     = "rate(1 hour)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.reconcile_schedule_expression))
    error_message = "reconcile_schedule_expression must be rate(...) or cron(...)."
  }
}

variable "throttling_burst_limit" {
  description = "API Gateway burst limit of every route (requests)."
  type        = number
  default     = 100
}

variable "throttling_rate_limit" {
  description = "API Gateway steady rate limit of every route (requests per second)."
  type        = number
  default     = 50
}

variable "lambda_json_logs" {
  description = "The functions log in Lambda's JSON format: Lambda's own lines (START, END, REPORT) as JSON beside the app's, and the app's filtered by lambda_log_level. false leaves Lambda's default plain-text format around the app's JSON lines; moto (5.2) does not keep a function's logging configuration, so its var file sets false."
  type        = bool
  default     = true
}

variable "lambda_log_level" {
  description = "The least level of the app's log lines the functions keep (TRACE, DEBUG, INFO, WARN, ERROR or FATAL) when lambda_json_logs is set."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.lambda_log_level)
    error_message = "lambda_log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_retention_days" {
  description = "Days the functions' logs and the API's access logs are kept."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ...)."
  }
}

variable "edge" {
  description = "Put CloudFront and a WAF web ACL in front of the API (modules/edge): per-token and per-address request limits, and the API function then refuses requests that did not come through CloudFront. false serves the API at API Gateway's own URL, limited by the stage throttle alone."
  type        = bool
  default     = true
}

variable "per_user_request_limit" {
  description = "With edge: requests one bearer token may make per rate_limit_window_seconds (WAF counts them per token); more get 429 until its rate falls below the limit."
  type        = number
  default     = 600

  validation {
    condition     = var.per_user_request_limit >= 10 && floor(var.per_user_request_limit) == var.per_user_request_limit
    error_message = "per_user_request_limit must be a whole number of at least 10 (WAF's smallest rate limit)."
  }
}

variable "anonymous_request_limit" {
  description = "With edge: requests without an Authorization header one IP address may make per rate_limit_window_seconds; more get 429."
  type        = number
  default     = 300

  validation {
    condition     = var.anonymous_request_limit >= 10 && floor(var.anonymous_request_limit) == var.anonymous_request_limit
    error_message = "anonymous_request_limit must be a whole number of at least 10 (WAF's smallest rate limit)."
  }
}

variable "rate_limit_window_seconds" {
  description = "With edge: the sliding window WAF counts requests over, 60, 120, 300 or 600 seconds (WAF's default is 300); also the Retry-After of its 429."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 120, 300, 600], var.rate_limit_window_seconds)
    error_message = "rate_limit_window_seconds must be 60, 120, 300 or 600 (the windows WAF offers)."
  }
}

variable "edge_price_class" {
  description = "With edge: CloudFront price class, PriceClass_100 (North America and Europe), PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.edge_price_class)
    error_message = "edge_price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "edge_domain_names" {
  description = "With edge: your own host names for the API (needs edge_certificate_arn); [] serves it at the distribution's *.cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "edge_certificate_arn" {
  description = "With edge: ACM certificate in us-east-1 covering edge_domain_names; with it viewers need TLS 1.2 or later (CloudFront's own certificate allows no minimum to be set)."
  type        = string
  default     = null
}
variable "alarm_email" {
  description = "E-mail address subscribed to the alarms topic (AWS mails it a confirmation link first); null subscribes nobody: subscribe what you use to the alarm_topic_arn output."
  type        = string
  default     = null
}

variable "alarm_period_seconds" {
  description = "Period over which every alarm sums its metric (10, 30 or a multiple of 60)."
  type        = number
  default     = 300
}

variable "alarm_api_5xx_threshold" {
  description = "5xx answers of the HTTP API per alarm period above which the API's alarm fires."
  type        = number
  default     = 5
}

variable "alarm_lambda_errors_threshold" {
  description = "Failed invocations of one function per alarm period above which its alarm fires."
  type        = number
  default     = 0
}

variable "alarm_lambda_throttles_threshold" {
  description = "Throttled invocations of one function per alarm period above which its alarm fires."
  type        = number
  default     = 0
}

variable "alarm_dynamodb_throttles_threshold" {
  description = "Read or write throttle events of the table or one of its indexes per alarm period above which its alarm fires."
  type        = number
  default     = 0
}

variable "cdn_public_key" {
  description = "PEM of the public key that verifies the image CDN's signed URLs, as `imagecore cdn-key --parameter <cdn_private_key_parameter>` prints it after keeping the private key in that SSM parameter. null (the default) leaves the CDN out: downloads are S3 presigned URLs."
  type        = string
  default     = null

  validation {
    condition     = var.cdn_public_key == null || can(regex("^-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\\s]+-----END PUBLIC KEY-----$", trimspace(coalesce(var.cdn_public_key, "unset"))))
    error_message = "cdn_public_key must be a PEM public key (-----BEGIN PUBLIC KEY----- ...), as `imagecore cdn-key` prints it."
  }
}

variable "cdn_private_key_parameter" {
  description = "With cdn_public_key: name of the SSM parameter (SecureString) holding the private signing key, which `imagecore cdn-key --parameter` wrote; null means /<name_prefix>/cdn-signing-key. The API function gets the name (IMAGECORE_CDN_PRIVATE_KEY_PARAMETER) and may read this one parameter. If you encrypted it with your own KMS key, that key must be kms_key_arn."
  type        = string
  default     = null

  validation {
    condition     = var.cdn_private_key_parameter == null || can(regex("^/[A-Za-z0-9_./-]+$", coalesce(var.cdn_private_key_parameter, "/unset")))
    error_message = "cdn_private_key_parameter must be a parameter path such as /imagecore/cdn-signing-key."
  }
}

variable "cdn_price_class" {
  description = "With cdn_public_key: CloudFront price class of the image distribution, PriceClass_100, PriceClass_200 or PriceClass_All."
  type        = string
  default     = "PriceClass_100"

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.cdn_price_class)
    error_message = "cdn_price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
}

variable "cdn_domain_names" {
  description = "With cdn_public_key: your own host names for the images (needs cdn_certificate_arn); links are signed for the first. [] serves them at the distribution's *.cloudfront.net name."
  type        = list(string)
  default     = []
}

variable "cdn_certificate_arn" {
  description = "With cdn_public_key: ACM certificate in us-east-1 covering cdn_domain_names."
  type        = string
  default     = null
}
