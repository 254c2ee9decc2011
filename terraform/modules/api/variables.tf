variable "name" {
  description = "Function and API name, and name prefix of the module's resources. 1-56 characters: letters, digits, '-' and '_'. Required."
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
  description = "ECR image URI built from docker/api.Dockerfile. Required."
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

variable "timeout_seconds" {
  description = "Function (and integration) timeout in seconds; API Gateway HTTP APIs stop waiting at 30. Range 3-29. Default 29."
  type        = number
  default     = 29

  validation {
    condition     = var.timeout_seconds >= 3 && var.timeout_seconds <= 29
    error_message = "timeout_seconds must be between 3 and 29."
  }
}

variable "memory_size" {
  description = "Function memory in MiB. Range 128-10240. Default 1024."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the API function; it also caps database connections. Range 1-1000. Default 50."
  type        = number
  default     = 50

  validation {
    condition     = var.reserved_concurrency >= 1 && var.reserved_concurrency <= 1000
    error_message = "reserved_concurrency must be between 1 and 1000."
  }
}

variable "throttling_burst_limit" {
  description = "Stage burst limit (requests). Range 1-5000. Default 200."
  type        = number
  default     = 200

  validation {
    condition     = var.throttling_burst_limit >= 1 && var.throttling_burst_limit <= 5000
    error_message = "throttling_burst_limit must be between 1 and 5000."
  }
}

variable "throttling_rate_limit" {
  description = "Stage steady-state rate limit (requests per second). Range 1-10000. Default 100."
  type        = number
  default     = 100

  validation {
    condition     = var.throttling_rate_limit >= 1 && var.throttling_rate_limit <= 10000
    error_message = "throttling_rate_limit must be between 1 and 10000."
  }
}

variable "jwt_issuer" {
  description = "Issuer URL (https://...) of a JWT authorizer put in front of every non-public route; null = no gateway authorizer, the application's API keys only. Default null."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^https://", var.jwt_issuer))
    error_message = "jwt_issuer must be null or an https:// URL."
  }
}

variable "jwt_audience" {
  description = "Accepted audiences of the JWT authorizer (needed when jwt_issuer is set). Default []."
  type        = list(string)
  default     = []

  validation {
    condition     = var.jwt_issuer == null || length(var.jwt_audience) > 0
    error_message = "jwt_audience must name at least one audience when jwt_issuer is set."
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
  description = "KMS key ARN of the environment. Required."
  type        = string
}

variable "queue_arn" {
  description = "ARN of the execution queue. Required."
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

variable "webhook_secrets_secret_arn" {
  description = "ARN of the secret holding the webhook signing secrets (CONVEYOR_WEBHOOK_SECRETS). Required."
  type        = string
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
  description = "Retention of the function and access log groups, in days; one of the values CloudWatch Logs accepts (1-3653). Default 365."
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
