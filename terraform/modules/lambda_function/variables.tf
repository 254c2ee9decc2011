variable "name" {
  description = "Function name, also the name of its role, security group and log group. 1-64 characters: letters, digits, '-' and '_'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, '-' or '_'."
  }
}

variable "description" {
  description = "What the function does (function and security group descriptions). 1-200 characters. Required."
  type        = string

  validation {
    condition     = length(var.description) >= 1 && length(var.description) <= 200
    error_message = "description must be 1-200 characters."
  }
}

variable "image_uri" {
  description = "ECR image URI. Required."
  type        = string
}

variable "handler" {
  description = "Python entry point the image runs, module.function (e.g. api.handler.handler). Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_.]*\\.[A-Za-z_][A-Za-z0-9_]*$", var.handler))
    error_message = "handler must be a dotted module.function path."
  }
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
  description = "Function timeout in seconds. Range 3-900. Required."
  type        = number

  validation {
    condition     = var.timeout_seconds >= 3 && var.timeout_seconds <= 900
    error_message = "timeout_seconds must be between 3 and 900."
  }
}

variable "memory_size" {
  description = "Function memory in MiB. Range 128-10240. Required."
  type        = number

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for (and capping) the function. Range 1-1000. Required."
  type        = number

  validation {
    condition     = var.reserved_concurrency >= 1 && var.reserved_concurrency <= 1000
    error_message = "reserved_concurrency must be between 1 and 1000."
  }
}

variable "environment" {
  description = "Environment variables of the function (encrypted with kms_key_arn). Default {}."
  type        = map(string)
  default     = {}
}

variable "policy_name" {
  description = "Name of the role's inline policy. Required."
  type        = string
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the statements the function needs besides its own logs and the KMS key. Required."
  type        = string
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
  description = "KMS key ARN for the environment variables and the log group. Required."
  type        = string
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
