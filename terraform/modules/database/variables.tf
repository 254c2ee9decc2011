variable "name" {
  description = "Identifier of the instance and name prefix of its resources. 1-40 characters: lowercase letters, digits and '-', starting with a letter. Required."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,39}$", var.name))
    error_message = "name must be 1-40 characters of lowercase letters, digits or '-', starting with a letter."
  }
}

variable "vpc_id" {
  description = "VPC of the database and its security groups. Required."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (at least 2, in different AZs) of the DB subnet group. Required."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must name at least 2 subnets."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN for storage, Performance Insights, log exports and the URL secret. Required."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version: major 15 or 16, optionally with a minor (\"16.4\"); minors are upgraded automatically. Default \"16\"."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^(15|16)(\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be 15 or 16, optionally with a minor version (e.g. 16.4)."
  }
}

variable "instance_class" {
  description = "RDS instance class (db.*). Default \"db.t4g.small\"."
  type        = string
  default     = "db.t4g.small"

  validation {
    condition     = can(regex("^db\\.", var.instance_class))
    error_message = "instance_class must be an RDS instance class such as db.t4g.small."
  }
}

variable "allocated_storage" {
  description = "Initial storage in GiB. Range 20-65536. Default 20."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage >= 20 && var.allocated_storage <= 65536
    error_message = "allocated_storage must be between 20 and 65536 GiB."
  }
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB; 0 disables autoscaling, otherwise at least allocated_storage and at most 65536. Default 100."
  type        = number
  default     = 100

  validation {
    condition     = var.max_allocated_storage == 0 || (var.max_allocated_storage >= 20 && var.max_allocated_storage <= 65536)
    error_message = "max_allocated_storage must be 0 or between 20 and 65536 GiB."
  }
}

variable "multi_az" {
  description = "Run a synchronous standby in a second AZ. Default true."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days automated backups are kept (point-in-time recovery window). Range 1-35. Default 7."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (set false before a deliberate destroy). Default true."
  type        = bool
  default     = true
}

variable "skip_final_snapshot" {
  description = "Delete without a final snapshot (<name>-final). Default false."
  type        = bool
  default     = false
}

variable "allow_major_version_upgrade" {
  description = "Allow engine_version to move to a new major (e.g. 15 -> 16). Default false."
  type        = bool
  default     = false
}

variable "apply_immediately" {
  description = "Apply modifications now instead of in the next maintenance window. Default false."
  type        = bool
  default     = false
}

variable "ca_cert_identifier" {
  description = "Certificate authority of the instance's TLS certificate (e.g. \"rds-ca-rsa4096-g1\"); null keeps the region's default (rds-ca-rsa2048-g1). Setting it costs a modify-and-wait after creation. Default null."
  type        = string
  default     = null
}

variable "database_name" {
  description = "Name of the application database. 1-63 characters: lowercase letters, digits and '_', starting with a letter. Default \"conveyor\"."
  type        = string
  default     = "conveyor"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be 1-63 characters of lowercase letters, digits or '_', starting with a letter."
  }
}

variable "username" {
  description = "Master user name. 1-63 characters: lowercase letters, digits and '_', starting with a letter; not a reserved word such as postgres or admin. Default \"conveyor\"."
  type        = string
  default     = "conveyor"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.username)) && !contains(["postgres", "admin", "rdsadmin"], var.username)
    error_message = "username must be 1-63 characters of lowercase letters, digits or '_', starting with a letter, and not postgres/admin/rdsadmin."
  }
}

variable "password_version" {
  description = "Version of the write-only master password. Increase it (1, 2, 3, ...) to generate a new password and write it to the instance and the URL secret in one apply. Range 1-1000000. Default 1."
  type        = number
  default     = 1

  validation {
    condition     = var.password_version >= 1 && var.password_version <= 1000000 && floor(var.password_version) == var.password_version
    error_message = "password_version must be a whole number between 1 and 1000000."
  }
}

variable "slow_query_log_ms" {
  description = "Statements slower than this many milliseconds are logged. Range 100-60000. Default 1000."
  type        = number
  default     = 1000

  validation {
    condition     = var.slow_query_log_ms >= 100 && var.slow_query_log_ms <= 60000
    error_message = "slow_query_log_ms must be between 100 and 60000."
  }
}

variable "monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds: 0 (off), 1, 5, 10, 15, 30 or 60. Default 60."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.monitoring_interval)
    error_message = "monitoring_interval must be one of 0, 1, 5, 10, 15, 30, 60."
  }
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL logs, in days; one of the values CloudWatch Logs accepts (1-3653). Default 365."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "secret_recovery_window_days" {
  description = "Days a deleted URL secret can be restored: 0 (delete at once) or 7-30. Default 30."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "secret_recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
