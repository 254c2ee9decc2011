output "cluster_name" {
  description = "Name of the ECS cluster (CONVEYOR_ECS_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Name of the ECS service (CONVEYOR_ECS_SERVICE, the Service dimension of BacklogPerWorker)."
  value       = aws_ecs_service.this.name
}

output "service_arn" {
  description = "ARN of the ECS service."
  value       = aws_ecs_service.this.id
}

output "task_definition_arn" {
  description = "ARN of the worker task definition (also used for one-off `conveyor db upgrade` tasks)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_definition_family" {
  description = "Family of the worker task definition; run-task with it uses the latest revision."
  value       = aws_ecs_task_definition.this.family
}

output "task_role_arn" {
  description = "ARN of the workers' task role."
  value       = aws_iam_role.task.arn
}

output "container_name" {
  description = "Name of the worker container (for run-task overrides)."
  value       = local.container_name
}

output "security_group_ids" {
  description = "Security groups of the tasks (for one-off tasks such as migrations)."
  value       = concat([aws_security_group.this.id], var.security_group_ids)
}

output "subnet_ids" {
  description = "Subnets of the tasks (for one-off tasks such as migrations)."
  value       = var.subnet_ids
}

output "min_count" {
  description = "Fewest tasks the service may be scaled to."
  value       = var.min_count
}

output "max_count" {
  description = "Most tasks the service may be scaled to."
  value       = var.max_count
}
