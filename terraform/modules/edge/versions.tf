terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # evaluation_window_sec of rate-based rules (added in March 2024): 5.40 has it.
      version = ">= 5.40"
    }
  }
}
