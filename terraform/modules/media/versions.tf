terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws_cloudfront_origin_access_control (4.40) and its origin_access_control_id.
      version = ">= 5.0"
    }
  }
}
