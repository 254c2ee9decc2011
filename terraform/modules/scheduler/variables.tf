variable "name" {
  description = "Function name and name prefix of the module's resources. 1-56 characters: letters, digits, '-' and '_'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,56}$", var.name))
    error_message = "name must be 1-56 characters of letters, digits, '-' or '_'."
  }
}

variable "environment_name" {
  description = "Label bound to every log line (CONVEYOR_ENVIRONMENT). Default \"production\"."
  type        = string
  default     = "production"
}

variable "region" {
  description = "AWS region the application talks to (CONVEYOR_REGION). Required."
  type        = string
}

variable "image_uri" {
  description = "ECR image URI (<repo>:<tag> or <repo>@sha256:...) built from docker/scheduler.Dockerfile. Required."
  type        = string
}

variable "architecture" {
  description = "Instruction set of the image: x86_64 or arm64. Default \"x86_64\"."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "schedule_expression" {
  description = "EventBridge schedule of the tick: rate(...) or cron(...). Workflows fire at minute resolution, so keep rate(1 minute) unless you know why. Default \"rate(1 minute)\"."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate|cron)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be rate(...) or cron(...)."
  }
}

variable "enabled" {
  description = "Whether the EventBridge rule fires (false pauses all scheduling). Default true."
  type        = bool
  default     = true
}

variable "timeout_seconds" {
  description = "Function timeout in seconds; keep it under the tick interval. Range 10-900. Default 60."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 10 and 900."
  }
}

variable "memory_size" {
  description = "Function memory in MiB. Range 128-10240. Default 512."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "vpc_id" {
  description = "VPC of the function's security group. Required."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the function runs in (need a route to AWS APIs). Required."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups, e.g. the database client group. Default []."
  type        = list(string)
  default     = []
}

variable "kms_key_arn" {
  description = "KMS key ARN of the environment (environment variables, logs, queue and secret encryption). Required."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the execution queue (send + attributes). Required."
  type        = string
}

variable "queue_name" {
  description = "Name of the execution queue (CONVEYOR_QUEUE_NAME, the Celery routing key). Required."
  type        = string
}

variable "queue_url" {
  description = "URL of the execution queue (CONVEYOR_QUEUE_URL). Required."
  type        = string
}

variable "dlq_url" {
  description = "URL of the dead-letter queue (CONVEYOR_DLQ_URL). Required."
  type        = string
}

variable "database_url_secret_arn" {
  description = "ARN of the secret holding the database URL (CONVEYOR_DATABASE_URL). Required."
  type        = string
}

variable "ecs_cluster_name" {
  description = "ECS cluster of the workers (CONVEYOR_ECS_CLUSTER). Required."
  type        = string
}

variable "ecs_service_name" {
  description = "ECS service of the workers (CONVEYOR_ECS_SERVICE); also the Service dimension of the backlog metric. Required."
  type        = string
}

variable "ecs_service_arn" {
  description = "ARN of the worker ECS service (the scheduler may only describe this one). Required."
  type        = string
}

variable "metric_namespace" {
  description = "CloudWatch namespace the scheduler may publish to. Default \"Conveyor\"."
  type        = string
  default     = "Conveyor"
}

variable "log_level" {
  description = "CONVEYOR_LOG_LEVEL: DEBUG, INFO, WARNING or ERROR. Default \"INFO\"."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "environment_variables" {
  description = "Extra environment variables (CONVEYOR_*), merged over the module's. Default {}."
  type        = map(string)
  default     = {}
}

variable "log_retention_days" {
  description = "Retention of the function's log group, in days; one of the values CloudWatch Logs accepts (1-3653). Default 365."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
