variable "table_name" {
  description = "Name of the DynamoDB table of image metadata."
  type        = string
}

variable "point_in_time_recovery" {
  description = "Keep continuous backups for point-in-time recovery."
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "Customer managed KMS key for encryption at rest; null uses the AWS managed key."
  type        = string
  default     = null
}

variable "deletion_protection" {
  description = "Refuse to delete the table while this is on: a throwaway deployment turns it off to be destroyed."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for the table."
  type        = map(string)
  default     = {}
}
