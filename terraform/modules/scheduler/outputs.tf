output "function_name" {
  description = "Name of the scheduler function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the scheduler function."
  value       = module.function.function_arn
}

output "role_arn" {
  description = "ARN of the scheduler's execution role."
  value       = module.function.role_arn
}

output "rule_name" {
  description = "Name of the EventBridge rule that fires the tick."
  value       = aws_cloudwatch_event_rule.tick.name
}

output "log_group_name" {
  description = "Log group of the scheduler."
  value       = module.function.log_group_name
}
