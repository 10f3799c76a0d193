# Image bytes through CloudFront: a distribution in front of the images bucket, reached by
# signed URLs only (src/adapters/cloudfront.py signs them), so that downloads and thumbnails can
# be cached at the edge and in browsers while staying as private as S3 presigned URLs.
#
# A module of its own rather than part of modules/edge: the edge fronts the API with WAF, caches
# nothing, must live in us-east-1 (its web ACL) and is on by default; this one fronts the
# bucket, caches everything it may, needs no WAF (a request without a valid signature is refused
# before the origin; the API's per-token limits mean nothing to a link without a token) and is
# off until an operator has made a signing key (cdn_public_key). CloudFront's resources are
# global, so this module takes the default provider; the bucket's policy, which must name this
# distribution, stays in modules/storage: a bucket has one policy.
#
# S3 is reached through origin access control (OAC): CloudFront signs every request to the
# bucket with SigV4, and the bucket's policy lets only this distribution read.

locals {
  origin_id = "images"

  # AWS managed response headers policy SecurityHeadersPolicy (fixed ID, the same in every
  # account): HSTS, X-Content-Type-Options nosniff, X-Frame-Options SAMEORIGIN, Referrer-Policy
  # and X-XSS-Protection on every answer. nosniff matters here: the bytes are users' uploads.
  security_headers_policy_id = "67f7725c-6f97-4210-82d7-5512b31e9d03"
}

resource "aws_cloudfront_origin_access_control" "images" {
  name                              = "${var.name_prefix}-images"
  description                       = "imagecore: CloudFront signs its requests to the images bucket"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

# The public half of the key made by `imagecore cdn-key`, whose private half only the SSM
# parameter holds. A new key (rotation) is a new public key: it is made before the old one
# goes, and the key group moves to it in between.
resource "aws_cloudfront_public_key" "signing" {
  name_prefix = "${var.name_prefix}-images-"
  comment     = "imagecore: verifies the signed URLs of image downloads"
  encoded_key = var.public_key

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudfront_key_group" "signers" {
  name    = "${var.name_prefix}-images"
  comment = "imagecore: the keys whose signed URLs the image distribution serves"
  items   = [aws_cloudfront_public_key.signing.id]
}

# The origin's Cache-Control decides (the service marks what never changes as immutable, for a
# year); without one an object is kept a day. The cache key is the path and S3's two
# response-header parameters, nothing else: no header, no cookie, none of the signature's own
# parameters (Expires, Signature, Key-Pair-Id), so every link to one object answered one way is
# one cache entry, whoever signed it and until when. What is in the cache key is forwarded to the
# origin: a download's link asks S3 for the image's Content-Type and an attachment
# Content-Disposition with its file name (originals are stored without them), which S3 honours
# on signed requests only, as origin access control's are (src/adapters/cloudfront.py). A
# rendition's link asks for neither: it is served as stored. CloudFront checks the signature,
# which covers these parameters, before the cache.
resource "aws_cloudfront_cache_policy" "images" {
  name        = "${var.name_prefix}-images"
  comment     = "imagecore: image bytes, cached by their path as long as the origin says"
  min_ttl     = 0
  default_ttl = 86400
  max_ttl     = 31536000

  parameters_in_cache_key_and_forwarded_to_origin {
    # JPEG, PNG, GIF and WebP are compressed already.
    enable_accept_encoding_gzip   = false
    enable_accept_encoding_brotli = false

    cookies_config {
      cookie_behavior = "none"
    }

    headers_config {
      header_behavior = "none"
    }

    query_strings_config {
      query_string_behavior = "whitelist"
      query_strings {
        items = ["response-content-disposition", "response-content-type"]
      }
    }
  }
}

resource "aws_cloudfront_distribution" "images" {
  #checkov:skip=CKV_AWS_86: Standard logs need a bucket with ACLs enabled, which this deployment has none of; every link is handed out by the API, whose access log and function logs record who asked for which image.
  #checkov:skip=CKV_AWS_68: No WAF: every request needs a URL signed by the key group, checked by CloudFront before anything else, and WAF's per-request price would double that of serving a cached thumbnail.
  #checkov:skip=CKV2_AWS_47: No WAF (see CKV_AWS_68): the Log4j rule set guards application servers, and the origin is S3.
  #checkov:skip=CKV_AWS_174: The TLS minimum is TLSv1.2_2021 with your own certificate (certificate_arn); CloudFront's default *.cloudfront.net certificate fixes it at TLSv1 and allows no other.
  #checkov:skip=CKV2_AWS_42: A custom certificate needs a domain of your own (domain_names, certificate_arn); without one the images are served with CloudFront's certificate for *.cloudfront.net.
  #checkov:skip=CKV_AWS_310: One origin on purpose: the bucket is the only copy of the bytes (a failover origin would need a replicated bucket, see CKV_AWS_144 on the bucket).
  #checkov:skip=CKV_AWS_374: Images are shared with users wherever they are; geo restriction is a per-deployment choice.
  #checkov:skip=CKV_AWS_305: No default root object: there is nothing at /, and every path needs a signed URL anyway.
  #checkov:skip=CKV2_AWS_32: A response headers policy is attached: AWS's managed SecurityHeadersPolicy, by its fixed ID (local.security_headers_policy_id), which the check does not resolve.
  enabled         = true
  is_ipv6_enabled = true
  http_version    = "http2and3"
  comment         = "${var.name_prefix}: image bytes, by signed URL only"
  price_class     = var.price_class
  aliases         = var.domain_names

  origin {
    origin_id                = local.origin_id
    domain_name              = var.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.images.id
  }

  default_cache_behavior {
    target_origin_id           = local.origin_id
    allowed_methods            = ["GET", "HEAD"]
    cached_methods             = ["GET", "HEAD"]
    viewer_protocol_policy     = "https-only"
    cache_policy_id            = aws_cloudfront_cache_policy.images.id
    response_headers_policy_id = local.security_headers_policy_id
    trusted_key_groups         = [aws_cloudfront_key_group.signers.id]
    compress                   = false # see the cache policy
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    cloudfront_default_certificate = var.certificate_arn == null
    acm_certificate_arn            = var.certificate_arn
    ssl_support_method             = var.certificate_arn == null ? null : "sni-only"
    minimum_protocol_version       = var.certificate_arn == null ? "TLSv1" : "TLSv1.2_2021"
  }

  lifecycle {
    precondition {
      condition     = length(var.domain_names) == 0 || var.certificate_arn != null
      error_message = "cdn_domain_names needs cdn_certificate_arn: an ACM certificate in us-east-1 that covers them."
    }
  }
}
