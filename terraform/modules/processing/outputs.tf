output "queue_url" {
  description = "URL of the job queue."
  value       = aws_sqs_queue.jobs.id
}

output "queue_arn" {
  description = "ARN of the job queue, once its policy lets the bucket send to it: use this for the bucket's notification."
  value       = aws_sqs_queue.jobs.arn
  # S3 checks that it may send to the queue when the notification is written.
  depends_on = [aws_sqs_queue_policy.jobs]
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue of jobs that failed max_receive_count times."
  value       = aws_sqs_queue.dead_letter.id
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "function_names" {
  description = "Names of the worker and reconcile functions."
  value       = { for name, function in module.function : name => function.function_name }
}

output "role_arns" {
  description = "Execution role ARN of each function."
  value       = { for name, function in module.function : name => function.role_arn }
}
