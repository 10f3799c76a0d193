variable "bucket_name" {
  description = "Name of the S3 bucket of image bytes (IMAGECORE_BUCKET); globally unique."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "notification_queue_arn" {
  description = "ARN of the SQS queue told of every object created under uploads/ (direct uploads). Its policy must already let this bucket send to it."
  type        = string
}

variable "upload_cors_origins" {
  description = "Origins (scheme://host[:port]) of browser pages that POST presigned upload forms and PUT upload-session parts to the bucket; [] for no CORS configuration."
  type        = list(string)
  default     = []

  validation {
    # S3 compares the Origin header as written: a path or a trailing "/" would never match.
    condition     = alltrue([for origin in var.upload_cors_origins : can(regex("^https?://[A-Za-z0-9*.-]+(:[0-9]{1,5})?$", origin))])
    error_message = "upload_cors_origins must be origins such as https://app.example.com or http://localhost:5173: scheme, host and optional port, no path or trailing slash."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which an overwritten or deleted object's old version is removed."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "kms_key_arn" {
  description = "KMS key for the bucket's default encryption; null keeps SSE-S3 (AES256). The service itself asks for AES256 on every put, so this only affects objects written by others."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "Bucket that receives S3 server access logs (under s3/<bucket>/); null for none."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Let terraform destroy delete the bucket with every object version in it. Keep false where the images matter."
  type        = bool
  default     = false
}

variable "cloudfront_reads" {
  description = "Let a CloudFront distribution (cloudfront_distribution_arn, modules/media) read images/ through origin access control. A separate flag, known when planning, because the distribution's ARN is not."
  type        = bool
  default     = false
}

variable "cloudfront_distribution_arn" {
  description = "With cloudfront_reads: ARN of the only distribution that may s3:GetObject under images/."
  type        = string
  default     = null
}

variable "require_tls" {
  description = "Deny every request to the bucket that does not use TLS (bucket policy). Keep true on AWS; false only for moto server, whose loopback endpoint is plain http and which enforces bucket policies."
  type        = bool
  default     = true
}

variable "archive_originals_after_days" {
  description = "Days after which an original image (under images/, of 128 KiB or more) moves to S3 Glacier Instant Retrieval, still downloadable with no restore; null keeps every object in STANDARD."
  type        = number
  default     = 90

  validation {
    # Any whole number works; Glacier IR bills an object 90 days at least, so an image deleted
    # soon after its move costs the rest of them anyway.
    condition     = var.archive_originals_after_days == null || try(var.archive_originals_after_days >= 1 && floor(var.archive_originals_after_days) == var.archive_originals_after_days, false)
    error_message = "archive_originals_after_days must be a whole number of days, at least 1, or null."
  }
}
