variable "name_prefix" {
  description = "Prefix of every name: <prefix>-edge (the web ACL), aws-waf-logs-<prefix>-edge, ..."
  type        = string
}

variable "origin_url" {
  description = "Invoke URL of the HTTP API's $default stage (https://<id>.execute-api.<region>.amazonaws.com/): CloudFront's origin."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+/?$", var.origin_url))
    error_message = "origin_url must be the https URL of the $default stage, without a path."
  }
}

variable "origin_verify_secret" {
  description = "Value of the X-Origin-Verify header CloudFront adds to every request it sends the API; the API function refuses requests without it (IMAGECORE_ORIGIN_VERIFY_SECRET)."
  type        = string
  sensitive   = true
}

variable "per_user_request_limit" {
  description = "Requests one bearer token may make per rate_limit_window_seconds before WAF answers 429."
  type        = number
  default     = 600

  validation {
    condition     = var.per_user_request_limit >= 10 && floor(var.per_user_request_limit) == var.per_user_request_limit
    error_message = "per_user_request_limit must be a whole number of at least 10 (WAF's smallest rate limit)."
  }
}

variable "anonymous_request_limit" {
  description = "Requests without an Authorization header one IP address may make per rate_limit_window_seconds before WAF answers 429."
  type        = number
  default     = 300

  validation {
    condition     = var.anonymous_request_limit >= 10 && floor(var.anonymous_request_limit) == var.anonymous_request_limit
    error_message = "anonymous_request_limit must be a whole number of at least 10 (WAF's smallest rate limit)."
  }
}

variable "rate_limit_window_seconds" {
  description = "The window WAF counts each key's requests over: 60, 120, 300 or 600 seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 120, 300, 600], var.rate_limit_window_seconds)
    error_message = "rate_limit_window_seconds must be 60, 120, 300 or 600 (the windows WAF offers)."
  }
}

variable "price_class" {
  description = "CloudFront price class: which edge locations serve the API (PriceClass_100, PriceClass_200 or PriceClass_All)."
  type        = string
  default     = "PriceClass_100"
}

variable "domain_names" {
  description = "Your own host names for the API (CNAMEs of the distribution); [] serves it at the distribution's *.cloudfront.net name only."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate (in us-east-1) for domain_names; null uses CloudFront's own certificate, which allows no TLS minimum to be set."
  type        = string
  default     = null
}

variable "log_retention_days" {
  description = "Days WAF's request logs are kept."
  type        = number
  default     = 30
}
