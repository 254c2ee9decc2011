variable "name" {
  description = "Name prefix of the secrets (<name>/anthropic-api-key, <name>/webhook-secrets). 1-64 characters: letters, digits, '-', '_' and '/'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, '-', '_' or '/'."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts the secrets. Required."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can be restored: 0 (delete at once) or 7-30. Default 30."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
