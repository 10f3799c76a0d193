output "function_names" {
  description = "Names of the worker and reconcile functions."
  value       = { for name, function in module.function : name => function.function_name }
}

output "role_arns" {
  description = "Execution role ARN of each function."
  value       = { for name, function in module.function : name => function.role_arn }
}

output "reconcile_failures_queue_url" {
  description = "URL of the queue that receives reconcile runs that failed every retry."
  value       = aws_sqs_queue.reconcile_failures.id
}

output "reconcile_failures_queue_name" {
  description = "Name of the reconcile failures queue, for its CloudWatch metrics."
  value       = aws_sqs_queue.reconcile_failures.name
}
