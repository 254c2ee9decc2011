output "topic_arn" {
  description = "ARN of the alarm topic."
  value       = aws_sns_topic.this.arn
}

output "alarm_names" {
  description = "Names of the alarms."
  value = [
    aws_cloudwatch_metric_alarm.dlq_depth.alarm_name,
    aws_cloudwatch_metric_alarm.oldest_message.alarm_name,
    aws_cloudwatch_metric_alarm.scheduler_errors.alarm_name,
    aws_cloudwatch_metric_alarm.scheduler_silent.alarm_name,
    aws_cloudwatch_metric_alarm.api_5xx.alarm_name,
  ]
}
