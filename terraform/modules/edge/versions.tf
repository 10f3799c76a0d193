terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # evaluation_window_sec of rate-based rules came with 5.40.
      version = ">= 5.40"
    }
  }
}
