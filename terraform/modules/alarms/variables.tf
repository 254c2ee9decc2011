variable "name" {
  description = "Name of the SNS topic and prefix of the alarm names. 1-200 characters: letters, digits, '-' and '_'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,200}$", var.name))
    error_message = "name must be 1-200 characters of letters, digits, '-' or '_'."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts the topic (its key policy must let cloudwatch.amazonaws.com use it). Required."
  type        = string
}

variable "email_addresses" {
  description = "Addresses subscribed to the topic (each confirms by mail). Default []."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.email_addresses : can(regex("^[^@\\s]+@[^@\\s]+$", e))])
    error_message = "email_addresses must be e-mail addresses."
  }
}

variable "queue_name" {
  description = "Name of the execution queue. Required."
  type        = string
}

variable "dlq_name" {
  description = "Name of the dead-letter queue. Required."
  type        = string
}

variable "oldest_message_age_seconds" {
  description = "Alarm when the oldest execution message is older than this for 5 minutes. Range 60-1209600. Default 900."
  type        = number
  default     = 900

  validation {
    condition     = var.oldest_message_age_seconds >= 60 && var.oldest_message_age_seconds <= 1209600
    error_message = "oldest_message_age_seconds must be between 60 and 1209600."
  }
}

variable "scheduler_function_name" {
  description = "Name of the scheduler function. Required."
  type        = string
}

variable "scheduler_error_threshold" {
  description = "Alarm when the scheduler fails at least this many times in 5 minutes. Range 1-100. Default 1."
  type        = number
  default     = 1

  validation {
    condition     = var.scheduler_error_threshold >= 1 && var.scheduler_error_threshold <= 100
    error_message = "scheduler_error_threshold must be between 1 and 100."
  }
}

variable "api_id" {
  description = "Id of the HTTP API. Required."
  type        = string
}

variable "api_stage_name" {
  description = "Stage of the HTTP API. Default \"$default\"."
  type        = string
  default     = "$default"
}

variable "api_5xx_threshold" {
  description = "Alarm when the API answers 5xx at least this many times in 5 minutes. Range 1-100000. Default 5."
  type        = number
  default     = 5

  validation {
    condition     = var.api_5xx_threshold >= 1 && var.api_5xx_threshold <= 100000
    error_message = "api_5xx_threshold must be between 1 and 100000."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
