output "function_name" {
  description = "Name of the scheduler function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the scheduler function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the scheduler's execution role."
  value       = aws_iam_role.this.arn
}

output "rule_name" {
  description = "Name of the EventBridge rule that fires the tick."
  value       = aws_cloudwatch_event_rule.tick.name
}

output "log_group_name" {
  description = "Log group of the scheduler."
  value       = aws_cloudwatch_log_group.this.name
}
