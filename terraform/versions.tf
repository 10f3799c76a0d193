terraform {
  # terraform_data (the generated cursor secret) needs 1.4; optional object attributes and
  # cross-variable validation are not used, so 1.5 is a comfortable floor.
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}
