output "api_url" {
  description = "Base URL of the API for clients: through CloudFront and WAF when edge is on, else the HTTP API's $default stage."
  value       = var.edge ? module.edge[0].url : module.api.api_url
}

output "api_gateway_url" {
  description = "The HTTP API's own URL (its $default stage). With edge on it refuses every request (403): clients use api_url."
  value       = module.api.api_url
}

output "edge" {
  description = "With edge: the CloudFront distribution's ID and domain name and the WAF web ACL's ARN; null without."
  value = var.edge ? {
    distribution_id          = module.edge[0].distribution_id
    distribution_domain_name = module.edge[0].distribution_domain_name
    web_acl_arn              = module.edge[0].web_acl_arn
  } : null
}

output "cdn" {
  description = "With cdn_public_key: the image distribution's ID and domain name, the public key's ID and the private key's SSM parameter; null without."
  value = local.cdn ? {
    distribution_id          = module.media[0].distribution_id
    distribution_domain_name = module.media[0].distribution_domain_name
    domain_name              = module.media[0].domain_name
    public_key_id            = module.media[0].public_key_id
    private_key_parameter    = local.cdn_private_key_parameter
  } : null
}

output "api_id" {
  description = "ID of the HTTP API."
  value       = module.api.api_id
}

output "table_name" {
  description = "The DynamoDB table of image metadata (IMAGECORE_TABLE)."
  value       = module.metadata.table_name
}

output "bucket_name" {
  description = "The S3 bucket of image bytes (IMAGECORE_BUCKET)."
  value       = module.storage.bucket_name
}

output "queue_url" {
  description = "URL of the job queue (IMAGECORE_QUEUE_URL)."
  value       = module.queue.queue_url
}

output "dead_letter_queue_url" {
  description = "URL of the job queue's dead-letter queue."
  value       = module.queue.dead_letter_queue_url
}

output "reconcile_failures_queue_url" {
  description = "URL of the queue that receives the scheduled reconcile runs that failed every retry."
  value       = module.processing.reconcile_failures_queue_url
}

output "token_secret_parameter" {
  description = "Name of the SSM parameter (SecureString) holding the token secret (IMAGECORE_TOKEN_SECRET_PARAMETER)."
  value       = aws_ssm_parameter.token_secret.name
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic every CloudWatch alarm notifies (and notifies again when it is OK)."
  value       = module.alarms.topic_arn
}

output "function_names" {
  description = "Names of the Lambda functions: api, worker, reconcile."
  value       = merge({ api = module.api.function_name }, module.processing.function_names)
}

output "imagecore_environment" {
  description = "The service's settings for a local .env against this deployment (no secret, but the name of its SSM parameter, read at start): the functions' environment plus AWS_REGION."
  value       = merge(local.imagecore_environment, { AWS_REGION = var.region })
}
