output "bucket_name" {
  description = "The bucket's name: IMAGECORE_BUCKET."
  value       = aws_s3_bucket.images.id
}

output "bucket_regional_domain_name" {
  description = "The bucket's regional domain name: the media distribution's origin."
  value       = aws_s3_bucket.images.bucket_regional_domain_name
}

output "bucket_arn" {
  description = "The bucket's ARN, for IAM and queue policies."
  value       = aws_s3_bucket.images.arn
}
