variable "name" {
  description = "Name prefix of the key alias (alias/<name>). 1-64 characters: letters, digits, '-', '_' and '/'. Required."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_-]{1,64}$", var.name))
    error_message = "name must be 1-64 characters of letters, digits, '-', '_' or '/'."
  }
}

variable "deletion_window_in_days" {
  description = "Days a scheduled key deletion waits before the key is destroyed. Range 7-30. Default 30."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
