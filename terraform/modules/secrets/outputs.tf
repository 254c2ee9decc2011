output "anthropic_api_key_secret_arn" {
  description = "ARN of the Anthropic API key secret (CONVEYOR_ANTHROPIC_API_KEY)."
  value       = aws_secretsmanager_secret.this["anthropic_api_key"].arn
}

output "webhook_secrets_secret_arn" {
  description = "ARN of the webhook signing secrets (CONVEYOR_WEBHOOK_SECRETS)."
  value       = aws_secretsmanager_secret.this["webhook_secrets"].arn
}
