variable "name_prefix" {
  description = "Prefix of the queues' names: <prefix>-jobs and <prefix>-jobs-dlq."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the image bucket: the only source allowed to send S3 notifications to the job queue."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "How long a received job stays hidden from other receivers; at least the worker's timeout (AWS advises six times it for a Lambda event source)."
  type        = number
  default     = 360

  validation {
    condition     = var.visibility_timeout_seconds >= 0 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 0 and 43200 (12 hours, SQS's limit)."
  }
}

variable "message_retention_seconds" {
  description = "How long the job queue keeps a message."
  type        = number
  default     = 345600 # 4 days
}

variable "max_receive_count" {
  description = "Deliveries of a job before it moves to the dead-letter queue; greater than thumbnail_attempts."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "thumbnail_attempts" {
  description = "Receives of a thumbnail job after which the worker marks the thumbnail failed itself (its IMAGECORE_THUMBNAIL_ATTEMPTS): only checked here, against max_receive_count."
  type        = number
  default     = 3
}

variable "require_tls" {
  description = "Deny every request to the job queue that does not use TLS (queue policy). Keep true on AWS; false only for a local endpoint served over plain http."
  type        = bool
  default     = true
}
