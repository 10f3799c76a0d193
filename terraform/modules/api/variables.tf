variable "name_prefix" {
  description = "Prefix of every name: <prefix>-api, <prefix>-http-api, ..."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the deployment zip."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime of the function."
  type        = string
  default     = "python3.12"
}

variable "architecture" {
  description = "Instruction set of the function: x86_64 or arm64 (must match the zip's native wheels, e.g. Pillow)."
  type        = string
  default     = "x86_64"
}

variable "environment" {
  description = "Environment variables of the function (names the token secret's parameter; never holds a secret)."
  type        = map(string)
  sensitive   = true
}

variable "table_arn" {
  description = "ARN of the metadata table."
  type        = string
}

variable "index_arns" {
  description = "ARNs (or ARN patterns) of the table's indexes, for Query."
  type        = list(string)
}

variable "bucket_arn" {
  description = "ARN of the image bucket."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the job queue the function sends thumbnail jobs to."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the function's environment (and any data it reads that it encrypts); null for AWS managed keys."
  type        = string
  default     = null
}

variable "jwt_issuer" {
  description = "Issuer (iss) of the bearer tokens the JWT authorizer accepts; its OpenID discovery document must be reachable by API Gateway."
  type        = string
}

variable "jwt_audience" {
  description = "Audiences (aud, or client_id for access tokens) the JWT authorizer accepts."
  type        = list(string)

  validation {
    condition     = length(var.jwt_audience) > 0
    error_message = "jwt_audience needs at least one audience."
  }
}

variable "throttling_burst_limit" {
  description = "Burst limit of every route of the stage (requests)."
  type        = number
  default     = 100
}

variable "throttling_rate_limit" {
  description = "Steady rate limit of every route of the stage (requests per second)."
  type        = number
  default     = 50
}

variable "timeout_seconds" {
  description = "Timeout of the function; at most the integration timeout (API Gateway gives up after 30 s)."
  type        = number
  default     = 29

  validation {
    condition     = var.timeout_seconds >= 1 && var.timeout_seconds <= 30
    error_message = "timeout_seconds must be between 1 and 30: API Gateway never waits longer."
  }
}

variable "integration_timeout_milliseconds" {
  description = "How long API Gateway waits for the function (50-30000 ms)."
  type        = number
  default     = 30000
}

variable "memory_mb" {
  description = "Memory of the function (also its CPU share)."
  type        = number
  default     = 1024
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of the function; null for none (the account's unreserved pool)."
  type        = number
  default     = null
}

variable "json_logs" {
  description = "Lambda's logging configuration in JSON format; false leaves Lambda's default."
  type        = bool
  default     = true
}

variable "log_level" {
  description = "The least level of the app's log lines Lambda keeps when json_logs is set."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Days the function's logs and the API's access logs are kept."
  type        = number
  default     = 30
}

variable "tracing_mode" {
  description = "X-Ray tracing of the function: Active or PassThrough."
  type        = string
  default     = "Active"
}

variable "secret_parameter_arn" {
  description = "ARN of the SSM parameter that holds the token secret: the function may read (ssm:GetParameter) exactly that one."
  type        = string
}

variable "signing_key_parameter_arn" {
  description = "With the CDN: ARN of the SSM parameter that holds its private signing key, which the function may read (ssm:GetParameter); null without."
  type        = string
  default     = null
}
