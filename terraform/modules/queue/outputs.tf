output "queue_url" {
  description = "URL of the job queue: IMAGECORE_QUEUE_URL, where the functions send jobs."
  value       = aws_sqs_queue.jobs.id
}

output "queue_arn" {
  description = "ARN of the job queue, for the functions' IAM policies and the worker's event source mapping."
  value       = aws_sqs_queue.jobs.arn
}

output "notification_queue_arn" {
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
