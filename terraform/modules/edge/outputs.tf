output "url" {
  description = "The API's address through CloudFront and WAF: your first domain name if given, else the distribution's."
  value       = "https://${length(var.domain_names) > 0 ? var.domain_names[0] : aws_cloudfront_distribution.api.domain_name}/"
}

output "distribution_id" {
  description = "ID of the CloudFront distribution."
  value       = aws_cloudfront_distribution.api.id
}

output "distribution_domain_name" {
  description = "The distribution's *.cloudfront.net name (point your domain names' DNS at it)."
  value       = aws_cloudfront_distribution.api.domain_name
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL in front of the distribution."
  value       = aws_wafv2_web_acl.edge.arn
}
