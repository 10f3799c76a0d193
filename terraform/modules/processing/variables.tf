variable "name_prefix" {
  description = "Prefix of every name: <prefix>-jobs, <prefix>-worker, <prefix>-reconcile, ..."
  type        = string
}

variable "lambda_zip" {
  description = "Path of the deployment zip shared by every function."
  type        = string
}

variable "runtime" {
  description = "Lambda runtime of the functions."
  type        = string
  default     = "python3.12"
}

variable "architecture" {
  description = "Instruction set of the functions: x86_64 or arm64 (must match the zip's native wheels, e.g. Pillow)."
  type        = string
  default     = "x86_64"
}

variable "environment" {
  description = "Environment variables of both functions (names the token secret's parameter, never holds the secret)."
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
  description = "ARN of the job queue (modules/queue) that the worker consumes and sends thumbnail jobs to; its visibility timeout must be at least worker_timeout_seconds."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for the functions' environment (and any data they read that it encrypts); null for AWS managed keys."
  type        = string
  default     = null
}

variable "worker_timeout_seconds" {
  description = "Timeout of the worker; the job queue's visibility timeout must be at least this (the root configuration makes it six times this)."
  type        = number
  default     = 60

  validation {
    condition     = var.worker_timeout_seconds >= 1 && var.worker_timeout_seconds <= 900
    error_message = "worker_timeout_seconds must be between 1 and 900."
  }
}

variable "worker_memory_mb" {
  description = "Memory of the worker (also its CPU share): thumbnails decode whole images."
  type        = number
  default     = 1536
}

variable "worker_reserved_concurrency" {
  description = "Reserved concurrency of the worker; null for none (the account's unreserved pool)."
  type        = number
  default     = null
}

variable "worker_max_concurrency" {
  description = "Most concurrent worker invocations the queue's event source mapping starts (2-1000); null for no limit."
  type        = number
  default     = null

  validation {
    condition     = var.worker_max_concurrency == null || (coalesce(var.worker_max_concurrency, 2) >= 2 && coalesce(var.worker_max_concurrency, 2) <= 1000)
    error_message = "worker_max_concurrency must be null or between 2 and 1000."
  }
}

variable "reconcile_timeout_seconds" {
  description = "Timeout of a reconcile run."
  type        = number
  default     = 900
}

variable "reconcile_memory_mb" {
  description = "Memory of the reconcile function."
  type        = number
  default     = 512
}

variable "reconcile_reserved_concurrency" {
  description = "Reserved concurrency of the reconcile function; null for none."
  type        = number
  default     = null
}

variable "reconcile_schedule_expression" {
  description = "EventBridge schedule of the reconcile run."
  type        = string
  default     = "rate(1 hour)"
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
  description = "Days the functions' logs are kept."
  type        = number
  default     = 30
}

variable "tracing_mode" {
  description = "X-Ray tracing of the functions: Active or PassThrough."
  type        = string
  default     = "Active"
}

variable "secret_parameter_arn" {
  description = "ARN of the SSM parameter that holds the token secret: both functions may read (ssm:GetParameter) exactly that one."
  type        = string
}

variable "reconcile_retry_attempts" {
  description = "Times Lambda tries a failed scheduled reconcile run again (0-2) before sending it to the failures queue."
  type        = number
  default     = 2

  validation {
    condition     = contains([0, 1, 2], var.reconcile_retry_attempts)
    error_message = "reconcile_retry_attempts must be 0, 1 or 2 (Lambda's limit for asynchronous invocations)."
  }
}

variable "reconcile_max_event_age_seconds" {
  description = "How long Lambda keeps retrying a scheduled reconcile run (60-21600 seconds) before it goes to the failures queue."
  type        = number
  default     = 3600

  validation {
    condition     = var.reconcile_max_event_age_seconds >= 60 && var.reconcile_max_event_age_seconds <= 21600
    error_message = "reconcile_max_event_age_seconds must be between 60 and 21600."
  }
}
