variable "name" {
  description = "Name of the ECS cluster, service and task family, and name prefix of the module's resources. 1-48 characters: letters, digits, '-' and '_'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,48}$", var.name))
    error_message = "name must be 1-48 characters of letters, digits, '-' or '_'."
  }
}

variable "environment_name" {
  description = "Label bound to every log line (CONVEYOR_ENVIRONMENT). Default \"production\"."
  type        = string
  default     = "production"
}

variable "region" {
  description = "AWS region of the tasks and their logs (CONVEYOR_REGION). Required."
  type        = string
}

variable "image_uri" {
  description = "ECR image URI built from docker/worker.Dockerfile. Required."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the ECR repository holding image_uri (the execution role may pull from it only). Required."
  type        = string
}

variable "architecture" {
  description = "CPU architecture of the image: X86_64 or ARM64. Default \"X86_64\"."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.architecture)
    error_message = "architecture must be X86_64 or ARM64."
  }
}

variable "cpu" {
  description = "Task CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384 (the memory must fit Fargate's table for it). Default 1024."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  description = "Task memory in MiB. Range 512-122880 (within Fargate's table for the cpu). Default 2048."
  type        = number
  default     = 2048

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880
    error_message = "memory must be between 512 and 122880."
  }
}

variable "concurrency" {
  description = "Executions one task runs at once (CONVEYOR_WORKER_CONCURRENCY). Range 1-256. Default 4."
  type        = number
  default     = 4

  validation {
    condition     = var.concurrency >= 1 && var.concurrency <= 256
    error_message = "concurrency must be between 1 and 256."
  }
}

variable "desired_count" {
  description = "Tasks at creation; afterwards autoscaling and `conveyor workers scale` own the count (Terraform ignores drift). Range min_count-max_count. Default 2."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= var.min_count && var.desired_count <= var.max_count
    error_message = "desired_count must be between min_count and max_count."
  }
}

variable "min_count" {
  description = "Fewest tasks autoscaling (and `conveyor workers scale`) may leave running. Range 0-1000; keep at least 1, the backlog-per-worker metric cannot wake a service at 0. Default 1."
  type        = number
  default     = 1

  validation {
    condition     = var.min_count >= 0 && var.min_count <= 1000 && floor(var.min_count) == var.min_count
    error_message = "min_count must be a whole number between 0 and 1000."
  }
}

variable "max_count" {
  description = "Most tasks autoscaling (and `conveyor workers scale`) may run. Range 1-1000, at least min_count. Default 10."
  type        = number
  default     = 10

  validation {
    condition     = var.max_count >= 1 && var.max_count <= 1000 && var.max_count >= var.min_count && floor(var.max_count) == var.max_count
    error_message = "max_count must be a whole number between 1 and 1000, and at least min_count."
  }
}

variable "backlog_per_worker_target" {
  description = "Target of the target-tracking policy: visible messages per running task (Conveyor/BacklogPerWorker). Range 1-10000. Default 10."
  type        = number
  default     = 10

  validation {
    condition     = var.backlog_per_worker_target >= 1 && var.backlog_per_worker_target <= 10000
    error_message = "backlog_per_worker_target must be between 1 and 10000."
  }
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before another. Range 0-3600. Default 300."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown_seconds >= 0 && var.scale_in_cooldown_seconds <= 3600
    error_message = "scale_in_cooldown_seconds must be between 0 and 3600."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before another. Range 0-3600. Default 60."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_out_cooldown_seconds >= 0 && var.scale_out_cooldown_seconds <= 3600
    error_message = "scale_out_cooldown_seconds must be between 0 and 3600."
  }
}

variable "stop_timeout_seconds" {
  description = "Seconds between SIGTERM (Celery warm shutdown) and SIGKILL. Range 2-120 (Fargate's maximum). Default 120."
  type        = number
  default     = 120

  validation {
    condition     = var.stop_timeout_seconds >= 2 && var.stop_timeout_seconds <= 120
    error_message = "stop_timeout_seconds must be between 2 and 120."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the BacklogPerWorker metric. Default \"Conveyor\"."
  type        = string
  default     = "Conveyor"
}

variable "vpc_id" {
  description = "VPC of the tasks' security group. Required."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the tasks run in (no public IPs; need a route to AWS APIs). Required."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Extra security groups, e.g. the database client group. Default []."
  type        = list(string)
  default     = []
}

variable "egress_ports" {
  description = "TCP ports the tasks may open to any address (AWS APIs, model providers, http steps). Each 1-65535. Default [443]."
  type        = list(number)
  default     = [443]

  validation {
    condition     = length(var.egress_ports) >= 1 && alltrue([for p in var.egress_ports : p >= 1 && p <= 65535])
    error_message = "egress_ports must list 1 or more ports between 1 and 65535."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN of the environment. Required."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the execution queue the workers consume. Required."
  type        = string
}

variable "queue_name" {
  description = "Name of the execution queue (CONVEYOR_QUEUE_NAME). Required."
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

variable "visibility_timeout_seconds" {
  description = "Visibility timeout of the execution queue, given to Celery (CONVEYOR_VISIBILITY_TIMEOUT_SECONDS). Range 30-43200. Required."
  type        = number

  validation {
    condition     = var.visibility_timeout_seconds >= 30 && var.visibility_timeout_seconds <= 43200
    error_message = "visibility_timeout_seconds must be between 30 and 43200."
  }
}

variable "database_url_secret_arn" {
  description = "ARN of the secret holding the database URL (CONVEYOR_DATABASE_URL). Required."
  type        = string
}

variable "anthropic_api_key_secret_arn" {
  description = "ARN of the secret holding the Anthropic API key (CONVEYOR_ANTHROPIC_API_KEY); null leaves agent steps unconfigured. Default null."
  type        = string
  default     = null
}

variable "lambda_function_arns" {
  description = "Function ARNs (unqualified) that workflow lambda steps may invoke; their versions and aliases are included. Default [] (no lambda:InvokeFunction at all)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.lambda_function_arns : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", a))])
    error_message = "lambda_function_arns must be unqualified Lambda function ARNs (arn:aws:lambda:REGION:ACCOUNT:function:NAME)."
  }
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
  description = "Retention of the workers' log group, in days; one of the values CloudWatch Logs accepts (1-3653). Default 365."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "emulator_mode" {
  description = "true only against a local AWS emulator (moto): skips the Application Auto Scaling target and policy, which the emulator cannot tag. Default false."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
