# ---------------------------------------------------------------- where

variable "region" {
  description = "AWS region of the environment. Default \"us-east-1\"."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-central-1."
  }
}

variable "name" {
  description = "Name prefix of every resource. 2-24 characters: lowercase letters, digits and '-', starting with a letter. Default \"conveyor\"."
  type        = string
  default     = "conveyor"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,23}$", var.name))
    error_message = "name must be 2-24 characters of lowercase letters, digits or '-', starting with a letter."
  }
}

variable "environment" {
  description = "Environment label (tags, CONVEYOR_ENVIRONMENT in every log line). Default \"production\"."
  type        = string
  default     = "production"
}

variable "image_tag" {
  description = "Tag of the scheduler, api and worker images pushed to this environment's ECR repositories (e.g. a git sha). Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))
    error_message = "image_tag must be a valid image tag (1-128 characters of letters, digits, '_', '.', '-')."
  }
}

# ---------------------------------------------------------------- network

variable "create_vpc" {
  description = "Create a VPC with private subnets and a NAT gateway (true) or use vpc_id and private_subnet_ids (false). Default true."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "CIDR of the created VPC, /16 to /24. Default \"10.40.0.0/16\"."
  type        = string
  default     = "10.40.0.0/16"
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway for egress from the private subnets (create_vpc = true only). Default true."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC (create_vpc = false). Default null."
  type        = string
  default     = null
}

variable "private_subnet_ids" {
  description = "Existing private subnets, at least 2 (create_vpc = false). Default []."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- data

variable "db_engine_version" {
  description = "PostgreSQL major (15 or 16), optionally with a minor. Default \"16\"."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "RDS instance class. Default \"db.t4g.small\"."
  type        = string
  default     = "db.t4g.small"
}

variable "db_multi_az" {
  description = "Standby in a second AZ. Default true."
  type        = bool
  default     = true
}

variable "db_password_version" {
  description = "Increase to rotate the database password (instance and URL secret together). Range 1-1000000. Default 1."
  type        = number
  default     = 1
}

variable "deletion_protection" {
  description = "Protect the database against deletion and keep a final snapshot; false also lets destroy delete non-empty ECR repositories. Default true."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored: 0 or 7-30. Default 30."
  type        = number
  default     = 30
}

variable "kms_deletion_window_days" {
  description = "Days a deleted KMS key waits before it is gone. Range 7-30. Default 30."
  type        = number
  default     = 30
}

variable "max_step_timeout_seconds" {
  description = "Longest step timeout a workflow may use; sets the queue's visibility timeout (plus 300 s). Range 1-42900. Default 3600."
  type        = number
  default     = 3600
}

# ---------------------------------------------------------------- compute

variable "worker_desired_count" {
  description = "Worker tasks at creation (then owned by autoscaling and `conveyor workers scale`). Range worker_min_count-worker_max_count. Default 2."
  type        = number
  default     = 2
}

variable "worker_min_count" {
  description = "Fewest worker tasks. Range 0-1000 (keep 1 or more). Default 1."
  type        = number
  default     = 1
}

variable "worker_max_count" {
  description = "Most worker tasks. Range 1-1000, at least worker_min_count. Default 10."
  type        = number
  default     = 10
}

variable "backlog_per_worker_target" {
  description = "Visible messages per worker task that autoscaling aims for. Range 1-10000. Default 10."
  type        = number
  default     = 10
}

variable "lambda_function_arns" {
  description = "Unqualified ARNs of the Lambda functions workflow steps may invoke (versions and aliases included). Default []."
  type        = list(string)
  default     = []
}

variable "scheduler_schedule_expression" {
  description = "EventBridge schedule of the scheduler tick. Default \"rate(1 minute)\"."
  type        = string
  default     = "rate(1 minute)"
}

variable "scheduler_enabled" {
  description = "Whether the scheduler tick fires; false on the very first apply, until migrations have run. Default true."
  type        = bool
  default     = true
}

variable "api_reserved_concurrency" {
  description = "Reserved (and maximum) concurrency of the API function. Range 1-1000. Default 50."
  type        = number
  default     = 50
}

variable "jwt_issuer" {
  description = "Issuer URL of an optional JWT authorizer in front of the API's non-public routes. Default null (API keys only)."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "Audiences the JWT authorizer accepts. Default []."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- operations

variable "log_level" {
  description = "CONVEYOR_LOG_LEVEL of every component: DEBUG, INFO, WARNING or ERROR. Default \"INFO\"."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Retention of every log group, in days (a value CloudWatch Logs accepts, 1-3653). Default 365."
  type        = number
  default     = 365
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic. Default []."
  type        = list(string)
  default     = []
}

# ---------------------------------------------------------------- tests only

variable "aws_endpoint_url" {
  description = "Tests only: one endpoint URL (a local AWS emulator on loopback) for every AWS service the example uses; also skips credential and account checks. Default null (real AWS)."
  type        = string
  default     = null

  validation {
    condition     = var.aws_endpoint_url == null || can(regex("^http://(127\\.[0-9]+\\.[0-9]+\\.[0-9]+|localhost|\\[::1\\]):[0-9]+/?$", var.aws_endpoint_url))
    error_message = "aws_endpoint_url must be null or a loopback http:// URL with a port."
  }
}

variable "emulator_mode" {
  description = "Tests only: true skips the resources the emulator (moto) cannot manage: the DLQ redrive-allow policy and the workers' Application Auto Scaling target and policy. Default false."
  type        = bool
  default     = false
}
