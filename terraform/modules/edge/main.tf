# The API's front door on AWS: a CloudFront distribution in front of the HTTP API's $default
# stage, with a WAF web ACL that limits each bearer token's request rate (API Gateway's stage
# throttle counts all callers together) and each anonymous IP address's.
#
# CloudFront adds a secret header to every request it sends the API, and the API function
# refuses requests without it (IMAGECORE_ORIGIN_VERIFY_SECRET): a client calling API Gateway's
# own URL would otherwise pass around WAF and its limits.
#
# Everything here is global or lives in us-east-1 (a CLOUDFRONT-scoped web ACL and its log
# group must): the root hands this module a provider for that region.

locals {
  origin_id     = "api"
  origin_domain = regex("^https://([^/]+)", var.origin_url)[0]

  # The header CloudFront adds; src/entrypoints/http/origin.py reads the same name.
  origin_verify_header = "X-Origin-Verify"

  # AWS managed policies, by their fixed IDs (the same in every account). CachingDisabled: TTL 0,
  # nothing of the API is cached, every request reaches it. AllViewerExceptHostHeader: every
  # viewer header (Authorization, If-Match, If-None-Match, Range, Content-Type, ...), query
  # string and cookie goes to the origin, but not Host, which API Gateway routes by. With caching
  # disabled this policy forwards Authorization too.
  caching_disabled_policy_id         = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host_policy_id   = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  too_many_requests_with_token_body  = "too-many-requests-with-token"
  too_many_requests_anonymously_body = "too-many-requests-anonymously"
}

# --- WAF ---------------------------------------------------------------------------------------

resource "aws_wafv2_web_acl" "edge" {
  name        = "${var.name_prefix}-edge"
  description = "imagecore: request rate per bearer token and per anonymous IP address"
  scope       = "CLOUDFRONT"

  default_action {
    allow {}
  }

  # The API's error format (docs/api.md, Error). WAF answers before the service runs, so there
  # is no request id of the service's: CloudFront's x-amz-cf-id header names the request.
  custom_response_body {
    key          = local.too_many_requests_with_token_body
    content_type = "APPLICATION_JSON"
    content = jsonencode({
      error      = "TooManyRequests"
      message    = "too many requests with this token: try again in ${var.rate_limit_window_seconds} s"
      request_id = ""
    })
  }

  custom_response_body {
    key          = local.too_many_requests_anonymously_body
    content_type = "APPLICATION_JSON"
    content = jsonencode({
      error      = "TooManyRequests"
      message    = "too many requests without a token from this address: try again in ${var.rate_limit_window_seconds} s"
      request_id = ""
    })
  }

  # Per user: the key is the whole Authorization header, so each bearer token has its own count.
  # A request without the header has no key and is not counted here (the next rule counts it).
  rule {
    name     = "per-token-rate"
    priority = 0

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = local.too_many_requests_with_token_body

          response_header {
            name  = "Retry-After"
            value = tostring(var.rate_limit_window_seconds)
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.per_user_request_limit
        evaluation_window_sec = var.rate_limit_window_seconds
        aggregate_key_type    = "CUSTOM_KEYS"

        custom_key {
          header {
            name = "authorization"

            text_transformation {
              priority = 0
              type     = "NONE"
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-per-token-rate"
      sampled_requests_enabled   = true
    }
  }

  # Anonymous floods: requests without an Authorization header, counted per client IP address.
  rule {
    name     = "anonymous-per-ip-rate"
    priority = 1

    action {
      block {
        custom_response {
          response_code            = 429
          custom_response_body_key = local.too_many_requests_anonymously_body

          response_header {
            name  = "Retry-After"
            value = tostring(var.rate_limit_window_seconds)
          }
        }
      }
    }

    statement {
      rate_based_statement {
        limit                 = var.anonymous_request_limit
        evaluation_window_sec = var.rate_limit_window_seconds
        aggregate_key_type    = "IP"

        scope_down_statement {
          not_statement {
            statement {
              size_constraint_statement {
                comparison_operator = "GT"
                size                = 0

                field_to_match {
                  single_header {
                    name = "authorization"
                  }
                }

                text_transformation {
                  priority = 0
                  type     = "NONE"
                }
              }
            }
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-anonymous-per-ip-rate"
      sampled_requests_enabled   = true
    }
  }

  # Request patterns known to exploit software (Log4j's JNDI lookups among them): no imagecore
  # request looks like one.
  rule {
    name     = "known-bad-inputs"
    priority = 2

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name_prefix}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name_prefix}-edge"
    sampled_requests_enabled   = true
  }
}

# WAF's request log: every request it saw, with the rule that decided it (who was limited).
# A CloudWatch log group for WAF must be named aws-waf-logs-*.
resource "aws_cloudwatch_log_group" "waf" {
  #checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts log data at rest by default; a customer managed key needs a key policy for logs.<region>.amazonaws.com and is left to deployments that require one.
  name              = "aws-waf-logs-${var.name_prefix}-edge"
  retention_in_days = var.log_retention_days
}

resource "aws_wafv2_web_acl_logging_configuration" "edge" {
  resource_arn            = aws_wafv2_web_acl.edge.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  # The bearer token is a credential: the log keeps that a request had one, not the token.
  redacted_fields {
    single_header {
      name = "authorization"
    }
  }
}

# --- CloudFront --------------------------------------------------------------------------------

resource "aws_cloudfront_distribution" "api" {
  #checkov:skip=CKV_AWS_86: WAF logs every request the distribution receives (aws_wafv2_web_acl_logging_configuration above) and API Gateway's access log every one it forwards; CloudFront's standard logs would need a second, ACL-enabled bucket and add nothing for an API that is never cached.
  #checkov:skip=CKV_AWS_174: The TLS minimum is TLSv1.2_2021 with your own certificate (certificate_arn); CloudFront's default *.cloudfront.net certificate fixes it at TLSv1 and allows no other.
  #checkov:skip=CKV2_AWS_42: A custom certificate needs a domain of your own (domain_names, certificate_arn); without one the API is served with CloudFront's certificate for *.cloudfront.net.
  #checkov:skip=CKV_AWS_310: One origin on purpose: the API has a single HTTP API endpoint, and a failover origin group only serves GET, HEAD and OPTIONS.
  #checkov:skip=CKV_AWS_374: The API serves users wherever they are; geo restriction is a per-deployment choice.
  #checkov:skip=CKV_AWS_305: No default root object: the origin is an API, whose paths the app answers itself (GET / is a 404 in the service's error format).
  #checkov:skip=CKV2_AWS_47: The web ACL has the Log4j rule set (AWSManagedRulesKnownBadInputsRuleSet, rule known-bad-inputs); the check also demands AWSManagedRulesAnonymousIpList, which blocks VPN, Tor and hosting-provider addresses, and so every client of the API that runs on a cloud server.
  #checkov:skip=CKV2_AWS_32: The API sets its security headers itself (src/entrypoints/http/middleware.py) on every answer, the same ones whether or not CloudFront is in front.
  enabled         = true
  is_ipv6_enabled = true
  http_version    = "http2and3"
  comment         = "${var.name_prefix}: the HTTP API behind WAF"
  price_class     = var.price_class
  aliases         = var.domain_names
  web_acl_id      = aws_wafv2_web_acl.edge.arn

  origin {
    origin_id   = local.origin_id
    domain_name = local.origin_domain

    custom_origin_config {
      http_port                = 80
      https_port               = 443
      origin_protocol_policy   = "https-only"
      origin_ssl_protocols     = ["TLSv1.2"]
      origin_read_timeout      = 30 # API Gateway gives up on the function after 30 s
      origin_keepalive_timeout = 5
    }

    custom_header {
      name  = local.origin_verify_header
      value = var.origin_verify_secret
    }
  }

  default_cache_behavior {
    target_origin_id         = local.origin_id
    allowed_methods          = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods           = ["GET", "HEAD"]
    viewer_protocol_policy   = "redirect-to-https"
    cache_policy_id          = local.caching_disabled_policy_id
    origin_request_policy_id = local.all_viewer_except_host_policy_id
    compress                 = false # the policy caches nothing, so CloudFront compresses nothing
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
      error_message = "domain_names needs certificate_arn: an ACM certificate in us-east-1 that covers them."
    }
  }
}
