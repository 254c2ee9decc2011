variable "name" {
  description = "Name of the execution queue; the DLQ is <name>-dlq. 1-76 characters: letters, digits, '-' and '_'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,76}$", var.name))
    error_message = "name must be 1-76 characters of letters, digits, '-' or '_'."
  }
}

variable "max_step_timeout_seconds" {
  description = "Longest step timeout any workflow may use, in seconds; the visibility timeout is this plus visibility_margin_seconds (capped at SQS's 43200). Range 1-42900. Default 3600."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_step_timeout_seconds >= 1 && var.max_step_timeout_seconds <= 42900
    error_message = "max_step_timeout_seconds must be between 1 and 42900."
  }
}

variable "visibility_margin_seconds" {
  description = "Seconds added to max_step_timeout_seconds for claim, bookkeeping and graceful shutdown. Range 30-3600. Default 300."
  type        = number
  default     = 300

  validation {
    condition     = var.visibility_margin_seconds >= 30 && var.visibility_margin_seconds <= 3600
    error_message = "visibility_margin_seconds must be between 30 and 3600."
  }
}

variable "message_retention_seconds" {
  description = "How long an unreceived message stays in the execution queue. Range 60-1209600 (14 days). Default 345600 (4 days)."
  type        = number
  default     = 345600

  validation {
    condition     = var.message_retention_seconds >= 60 && var.message_retention_seconds <= 1209600
    error_message = "message_retention_seconds must be between 60 and 1209600."
  }
}

variable "dlq_message_retention_seconds" {
  description = "How long a dead-lettered message stays in the DLQ; keep it longer than message_retention_seconds. Range 60-1209600. Default 1209600 (14 days)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dlq_message_retention_seconds >= 60 && var.dlq_message_retention_seconds <= 1209600
    error_message = "dlq_message_retention_seconds must be between 60 and 1209600."
  }
}

variable "max_receive_count" {
  description = "Receives after which a message moves to the DLQ. Range 1-1000. Default 5."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN for server-side encryption; null uses SQS-managed SSE. Default null."
  type        = string
  default     = null
}

variable "emulator_mode" {
  description = "true only against a local AWS emulator (moto): skips aws_sqs_queue_redrive_allow_policy, which the emulator never reports as settled. Default false."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
