output "domain_name" {
  description = "The host name links are signed for: your first domain name if given, else the distribution's (IMAGECORE_CDN_DOMAIN)."
  value       = length(var.domain_names) > 0 ? var.domain_names[0] : aws_cloudfront_distribution.images.domain_name
}

output "distribution_id" {
  description = "ID of the CloudFront distribution."
  value       = aws_cloudfront_distribution.images.id
}

output "distribution_arn" {
  description = "ARN of the distribution: the only principal the bucket's policy lets read through CloudFront."
  value       = aws_cloudfront_distribution.images.arn
}

output "distribution_domain_name" {
  description = "The distribution's *.cloudfront.net name (point your domain names' DNS at it)."
  value       = aws_cloudfront_distribution.images.domain_name
}

output "public_key_id" {
  description = "ID of the public key in the trusted key group (IMAGECORE_CDN_KEY_ID): the Key-Pair-Id of every link."
  value       = aws_cloudfront_public_key.signing.id
}
