variable "name_prefix" {
  description = "Prefix of the topic's, the key alias's and the API alarm's names."
  type        = string
}

variable "alarm_email" {
  description = "An address that gets every alarm (and its return to OK) by e-mail, once it has confirmed the subscription AWS mails it; null for no subscription."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", coalesce(var.alarm_email, "x@y.z")))
    error_message = "alarm_email must be an e-mail address, or null."
  }
}

variable "api_id" {
  description = "ID of the HTTP API whose 5xx answers are watched."
  type        = string
}

variable "api_stage" {
  description = "Stage of the HTTP API whose 5xx answers are watched."
  type        = string
  default     = "$default"
}

variable "function_names" {
  description = "The Lambda functions whose Errors and Throttles are watched, by role (api, worker, reconcile)."
  type        = map(string)
}

variable "dead_letter_queue_name" {
  description = "Name of the jobs' dead-letter queue."
  type        = string
}

variable "reconcile_failures_queue_name" {
  description = "Name of the queue of reconcile runs that failed every retry."
  type        = string
}

variable "table_name" {
  description = "Name of the metadata table whose throttling is watched."
  type        = string
}

variable "index_names" {
  description = "Names of the table's global secondary indexes, watched for throttling too."
  type        = list(string)
}

variable "period_seconds" {
  description = "Length of the period over which each metric is summed and compared with its threshold."
  type        = number
  default     = 300

  validation {
    condition     = contains([10, 30], var.period_seconds) || (var.period_seconds >= 60 && var.period_seconds % 60 == 0)
    error_message = "period_seconds must be 10, 30 or a multiple of 60."
  }
}

variable "evaluation_periods" {
  description = "Consecutive periods over the threshold before an alarm fires (the queues' alarms fire on the first)."
  type        = number
  default     = 1

  validation {
    condition     = var.evaluation_periods >= 1 && floor(var.evaluation_periods) == var.evaluation_periods
    error_message = "evaluation_periods must be a whole number of at least 1."
  }
}

variable "api_5xx_threshold" {
  description = "5xx answers of the API in one period above which its alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.api_5xx_threshold >= 0
    error_message = "api_5xx_threshold must not be negative."
  }
}

variable "lambda_errors_threshold" {
  description = "Failed invocations of one function in one period above which its alarm fires."
  type        = number
  default     = 0

  validation {
    condition     = var.lambda_errors_threshold >= 0
    error_message = "lambda_errors_threshold must not be negative."
  }
}

variable "lambda_throttles_threshold" {
  description = "Throttled invocations of one function in one period above which its alarm fires."
  type        = number
  default     = 0

  validation {
    condition     = var.lambda_throttles_threshold >= 0
    error_message = "lambda_throttles_threshold must not be negative."
  }
}

variable "dynamodb_throttles_threshold" {
  description = "Throttle events of the table or one index in one period above which its alarm fires."
  type        = number
  default     = 0

  validation {
    condition     = var.dynamodb_throttles_threshold >= 0
    error_message = "dynamodb_throttles_threshold must not be negative."
  }
}
