terraform {
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90.0, < 6.0.0"
    }
  }

  # Keep state remote and locked in a real account, e.g.:
  # backend "s3" {
  #   bucket       = "my-terraform-state"
  #   key          = "conveyor/production.tfstate"
  #   region       = "eu-central-1"
  #   use_lockfile = true
  #   encrypt      = true
  # }
}
