output "api_endpoint" {
  description = "Base URL of the HTTP API."
  value       = module.api.api_endpoint
}

output "ecr_repository_urls" {
  description = "Where to push the images (<url>:<image_tag>)."
  value       = module.ecr.repository_urls
}

output "queue_url" {
  description = "CONVEYOR_QUEUE_URL."
  value       = module.queue.queue_url
}

output "dlq_url" {
  description = "CONVEYOR_DLQ_URL."
  value       = module.queue.dlq_url
}

output "database_url_secret_arn" {
  description = "CONVEYOR_DATABASE_URL (a Secrets Manager ARN)."
  value       = module.database.url_secret_arn
}

output "anthropic_api_key_secret_arn" {
  description = "Secret to fill with the Anthropic API key."
  value       = module.secrets.anthropic_api_key_secret_arn
}

output "webhook_secrets_secret_arn" {
  description = "Secret to fill with the webhook signing secrets (JSON)."
  value       = module.secrets.webhook_secrets_secret_arn
}

output "ecs_cluster" {
  description = "CONVEYOR_ECS_CLUSTER."
  value       = module.workers.cluster_name
}

output "ecs_service" {
  description = "CONVEYOR_ECS_SERVICE."
  value       = module.workers.service_name
}

output "scheduler_function_name" {
  description = "Name of the scheduler function."
  value       = module.scheduler.function_name
}

output "api_function_name" {
  description = "Name of the API function."
  value       = module.api.function_name
}

output "alarm_topic_arn" {
  description = "SNS topic of the alarms."
  value       = module.alarms.topic_arn
}

output "migrate_command" {
  description = "Runs `conveyor db upgrade` as a one-off Fargate task with the latest worker task definition (image, network, roles)."
  value = join(" ", [
    "aws ecs run-task",
    "--region ${var.region}",
    "--cluster ${module.workers.cluster_name}",
    "--task-definition ${module.workers.task_definition_family}",
    "--launch-type FARGATE",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", module.workers.subnet_ids)}],securityGroups=[${join(",", module.workers.security_group_ids)}],assignPublicIp=DISABLED}'",
    "--overrides '{\"containerOverrides\":[{\"name\":\"${module.workers.container_name}\",\"command\":[\"conveyor\",\"db\",\"upgrade\"]}]}'",
  ])
}
