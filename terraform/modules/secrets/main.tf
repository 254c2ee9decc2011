# Containers for the provider secrets. Their values never pass through Terraform (nor its state):
# an operator writes them with `aws secretsmanager put-secret-value` (docs/deploy.md).

locals {
  secrets = {
    anthropic_api_key = {
      name        = "${var.name}/anthropic-api-key"
      description = "Anthropic API key of ${var.name} (CONVEYOR_ANTHROPIC_API_KEY), a plain string"
    }
    webhook_secrets = {
      name        = "${var.name}/webhook-secrets"
      description = "Webhook signing secrets of ${var.name} (CONVEYOR_WEBHOOK_SECRETS), a JSON object {\"source\": \"secret\"}"
    }
  }
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Provider API keys and webhook signing secrets are issued by third parties; they are rotated by hand (runbook in docs/deploy.md), there is no rotation Lambda that could mint them.
  for_each                = local.secrets
  name                    = each.value.name
  description             = each.value.description
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = var.recovery_window_days
  tags                    = var.tags
}
