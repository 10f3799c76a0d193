terraform {
  # The token secret is written through a write-only argument (value_wo) that Terraform 1.11
  # introduced, from an ephemeral resource (1.10): neither reaches the state.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws_ssm_parameter's value_wo and the ephemeral aws_secretsmanager_random_password; the
      # configuration is tested with 5.100.
      version = "~> 5.100"
    }
  }
}
