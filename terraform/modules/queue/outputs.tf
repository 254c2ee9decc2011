output "queue_url" {
  description = "URL of the execution queue (CONVEYOR_QUEUE_URL)."
  value       = aws_sqs_queue.this.id
}

output "queue_arn" {
  description = "ARN of the execution queue."
  value       = aws_sqs_queue.this.arn
}

output "queue_name" {
  description = "Name of the execution queue."
  value       = aws_sqs_queue.this.name
}

output "dlq_url" {
  description = "URL of the dead-letter queue (CONVEYOR_DLQ_URL)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "visibility_timeout_seconds" {
  description = "Visibility timeout of the execution queue (give it to workers as CONVEYOR_VISIBILITY_TIMEOUT_SECONDS)."
  value       = aws_sqs_queue.this.visibility_timeout_seconds
}
