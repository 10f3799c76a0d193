# Image bytes: one private, encrypted, versioned S3 bucket (see src/adapters/s3.py).
#
# Keys: images/<user>/<id> for originals, derivatives (thumbnails) under "<original>/", and
# uploads/... for direct uploads through a presigned POST; every object created under uploads/
# is announced to the processing queue, whose worker validates it and makes it an image.

resource "aws_s3_bucket" "images" {
  #checkov:skip=CKV_AWS_144: Cross-region replication is a disaster-recovery choice per deployment (second region, second provider, double storage cost); versioning protects against deletes and overwrites here.
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "images" {
  bucket = aws_s3_bucket.images.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# SSE-S3 (AES256) by default, on purpose: the service asks for AES256 on every put
# (src/adapters/s3.py), so a KMS default would not reach its own objects anyway.
resource "aws_s3_bucket_server_side_encryption_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_versioning" "images" {
  bucket = aws_s3_bucket.images.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Originals nobody has replaced for a while move to Glacier Instant Retrieval: about a fifth
  # of STANDARD's storage price, dearer per GET, and still read in milliseconds, so a download
  # (a presigned GET) works as before with no restore step; GLACIER or DEEP_ARCHIVE would need
  # a RestoreObject first and break downloads. Thumbnails sit under their original's key
  # (src/imagecore/blob_keys.py), which a prefix cannot tell apart, so the size decides: no
  # object under 128 KiB is transitioned (transition_default_minimum_object_size below), and a
  # thumbnail (at most 256 px a side, JPEG or WebP) is far smaller; 128 KiB is also the least
  # Glacier IR bills an object for. Noncurrent versions are not moved: they expire (rule above).
  # null turns the rule off (Disabled) rather than removing it: S3 keeps it, inert.
  rule {
    id     = "archive-old-originals"
    status = var.archive_originals_after_days == null ? "Disabled" : "Enabled"

    filter {
      prefix = "images/"
    }

    transition {
      days          = coalesce(var.archive_originals_after_days, 90)
      storage_class = "GLACIER_IR"
    }
  }

  # S3's default for new configurations, written down because the rule above relies on it to
  # leave thumbnails alone. (An object_size_greater_than in the rule's filter would say it too,
  # but moto drops it from an "and" filter, and the provider then waits for ever.)
  transition_default_minimum_object_size = "all_storage_classes_128K"

  # Rules on a versioned bucket apply once versioning is on.
  depends_on = [aws_s3_bucket_versioning.images]
}

# Server access logs need a bucket of the account's logging setup: off unless access_log_bucket
# is set (CloudTrail S3 data events are the other way to audit object access).
resource "aws_s3_bucket_logging" "images" {
  count = var.access_log_bucket == null ? 0 : 1

  bucket        = aws_s3_bucket.images.id
  target_bucket = var.access_log_bucket
  target_prefix = "s3/${var.bucket_name}/"
}

data "aws_iam_policy_document" "images" {
  # The media distribution (modules/media) reads images and their derivatives, signing its
  # requests through origin access control; no other distribution, and nothing under uploads/
  # (bytes not yet validated).
  dynamic "statement" {
    for_each = var.cloudfront_reads ? [var.cloudfront_distribution_arn] : []
    content {
      sid       = "CloudFrontReadsImages"
      effect    = "Allow"
      actions   = ["s3:GetObject"]
      resources = ["${aws_s3_bucket.images.arn}/images/*"]

      principals {
        type        = "Service"
        identifiers = ["cloudfront.amazonaws.com"]
      }

      condition {
        test     = "StringEquals"
        variable = "AWS:SourceArn"
        values   = [statement.value]
      }
    }
  }

  dynamic "statement" {
    for_each = var.require_tls ? [1] : []
    content {
      sid     = "DenyInsecureTransport"
      effect  = "Deny"
      actions = ["s3:*"]
      resources = [
        aws_s3_bucket.images.arn,
        "${aws_s3_bucket.images.arn}/*",
      ]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }
}

# TLS only; off (require_tls = false) for moto server, which evaluates bucket policies and takes
# its plain-http loopback endpoint for insecure transport. And the media distribution's reads.
resource "aws_s3_bucket_policy" "images" {
  count = var.require_tls || var.cloudfront_reads ? 1 : 0

  bucket = aws_s3_bucket.images.id
  policy = data.aws_iam_policy_document.images.json

  # S3 refuses a bucket policy while the public access block is being written.
  depends_on = [aws_s3_bucket_public_access_block.images]
}

resource "aws_s3_bucket_notification" "images" {
  bucket = aws_s3_bucket.images.id

  queue {
    id            = "direct-uploads"
    queue_arn     = var.notification_queue_arn
    events        = ["s3:ObjectCreated:*"]
    filter_prefix = "uploads/"
  }
}

# A page on another origin POSTs the presigned form (POST /uploads) straight to the bucket; the
# browser lets it only if S3 answers with CORS headers for that origin. No configuration at all
# without origins: S3 then answers no cross-origin request, as before. A form POST carries its
# fields in the body and sends only CORS-safelisted headers, so no request header is allowed.
resource "aws_s3_bucket_cors_configuration" "images" {
  count = length(var.upload_cors_origins) == 0 ? 0 : 1

  bucket = aws_s3_bucket.images.id

  cors_rule {
    id              = "direct-uploads"
    allowed_methods = ["POST"]
    allowed_origins = var.upload_cors_origins
    expose_headers  = ["ETag", "Location"]
    max_age_seconds = 3600
  }

  # The parts of an upload session (POST /upload-sessions): a browser PUTs each part to its
  # presigned URL with the part's checksum, and reads the ETag S3 answers to name the part.
  cors_rule {
    id              = "upload-session-parts"
    allowed_methods = ["PUT"]
    allowed_origins = var.upload_cors_origins
    allowed_headers = ["x-amz-checksum-sha256", "content-type"]
    expose_headers  = ["ETag"]
    max_age_seconds = 3600
  }
}
