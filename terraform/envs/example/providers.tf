locals {
  # Set only by tests: every service of the example is pointed at a local emulator (moto).
  emulated = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_requesting_account_id  = local.emulated
  s3_use_path_style           = local.emulated
  max_retries                 = local.emulated ? 2 : null

  dynamic "endpoints" {
    for_each = local.emulated ? [var.aws_endpoint_url] : []
    content {
      apigatewayv2           = endpoints.value
      applicationautoscaling = endpoints.value
      cloudwatch             = endpoints.value
      ec2                    = endpoints.value
      ecr                    = endpoints.value
      ecs                    = endpoints.value
      events                 = endpoints.value
      iam                    = endpoints.value
      kms                    = endpoints.value
      lambda                 = endpoints.value
      logs                   = endpoints.value
      rds                    = endpoints.value
      s3                     = endpoints.value
      secretsmanager         = endpoints.value
      sns                    = endpoints.value
      sqs                    = endpoints.value
      sts                    = endpoints.value
    }
  }

  default_tags {
    tags = {
      Project     = "conveyor"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
