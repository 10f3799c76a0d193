variable "name" {
  description = "Name of the function (also of its role and log group)."
  type        = string
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "handler" {
  description = "The handler, module.function, in the deployment zip."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the deployment zip."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime of the function."
  type        = string
}

variable "architecture" {
  description = "Instruction set of the function: x86_64 or arm64 (must match the zip's native wheels, e.g. Pillow)."
  type        = string

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "timeout_seconds" {
  description = "Timeout of one invocation."
  type        = number
}

variable "memory_mb" {
  description = "Memory of the function (also its CPU share)."
  type        = number
}

variable "reserved_concurrency" {
  description = "Reserved concurrency; null for none (the account's unreserved pool)."
  type        = number
  default     = null
}

variable "environment" {
  description = "Environment variables of the function (names the token secret's parameter; never holds a secret)."
  type        = map(string)
  sensitive   = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the function's environment (and data it reads that it encrypts); null for AWS managed keys."
  type        = string
  default     = null
}

variable "tracing_mode" {
  description = "X-Ray tracing: Active or PassThrough."
  type        = string

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "json_logs" {
  description = "Lambda's logging configuration in JSON format (its own lines too, filtered by log_level); false leaves Lambda's default (plain text around the app's JSON lines)."
  type        = bool
}

variable "log_level" {
  description = "The least level of the app's lines Lambda keeps when json_logs is set."
  type        = string

  validation {
    condition     = contains(["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"], var.log_level)
    error_message = "log_level must be one of TRACE, DEBUG, INFO, WARN, ERROR, FATAL."
  }
}

variable "log_retention_days" {
  description = "Days the function's logs are kept."
  type        = number
}

variable "table_arn" {
  description = "ARN of the metadata table."
  type        = string
}

variable "index_arns" {
  description = "ARNs (or ARN patterns) of the table's indexes, for Query."
  type        = list(string)
}

variable "table_actions" {
  description = "DynamoDB actions the function may take on the table."
  type        = list(string)
}

variable "bucket_arn" {
  description = "ARN of the image bucket."
  type        = string
}

variable "object_actions" {
  description = "S3 actions the function may take on the bucket's objects, by top-level key prefix: { \"images/\" = [\"s3:GetObject\", ...] } allows them on <bucket>/images/* only."
  type        = map(list(string))

  validation {
    # One lowercase segment each, which also keeps the statement ids distinct and valid.
    condition     = alltrue([for prefix in keys(var.object_actions) : can(regex("^[a-z0-9]+/$", prefix))])
    error_message = "object_actions must be keyed by top-level key prefixes such as \"images/\" (lowercase letters and digits, then \"/\"): no whole-bucket grant."
  }

  validation {
    condition     = alltrue([for actions in values(var.object_actions) : length(actions) > 0 && alltrue([for action in actions : startswith(action, "s3:")])])
    error_message = "object_actions must give every prefix at least one action, and S3 actions only (s3:...)."
  }
}

variable "extra_policy_json" {
  description = "A policy document merged into the function's own (the job queue); null for none."
  type        = string
  default     = null
}

variable "secret_parameter_arn" {
  description = "ARN of the SSM parameter holding the token secret, which the function may read (ssm:GetParameter); null for none."
  type        = string
  default     = null
}

variable "signing_key_parameter_arn" {
  description = "ARN of the SSM parameter holding the CDN's private signing key (IMAGECORE_CDN_PRIVATE_KEY_PARAMETER), which the function may read (ssm:GetParameter); null for none."
  type        = string
  default     = null
}
