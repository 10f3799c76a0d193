output "table_name" {
  description = "The table's name: IMAGECORE_TABLE."
  value       = aws_dynamodb_table.images.name
}

output "table_arn" {
  description = "The table's ARN, for IAM policies."
  value       = aws_dynamodb_table.images.arn
}

output "index_arns" {
  description = "ARNs of the table's indexes, for IAM policies that allow Query on them."
  value       = ["${aws_dynamodb_table.images.arn}/index/*"]
}

output "index_names" {
  description = "Names of the table's global secondary indexes, for their CloudWatch metrics (throttling)."
  value       = [for index in aws_dynamodb_table.images.global_secondary_index : index.name]
}
