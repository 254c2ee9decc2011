variable "name" {
  description = "Repository name prefix (<name>/<deployable>). 2-64 characters: lowercase letters, digits, '-', '_' and '/'. Required."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9/_-]{1,63}$", var.name))
    error_message = "name must be 2-64 characters of lowercase letters, digits, '-', '_' or '/'."
  }
}

variable "repositories" {
  description = "Deployables that get a repository. Default [\"scheduler\", \"api\", \"worker\"]."
  type        = list(string)
  default     = ["scheduler", "api", "worker"]

  validation {
    condition     = length(var.repositories) >= 1 && alltrue([for r in var.repositories : can(regex("^[a-z0-9][a-z0-9_-]{0,63}$", r))])
    error_message = "repositories must list 1 or more names of lowercase letters, digits, '-' or '_'."
  }
}

variable "kms_key_arn" {
  description = "KMS key ARN that encrypts the images. Required."
  type        = string
}

variable "keep_images" {
  description = "Images kept per repository; older ones expire. Range 1-1000. Default 30."
  type        = number
  default     = 30

  validation {
    condition     = var.keep_images >= 1 && var.keep_images <= 1000
    error_message = "keep_images must be between 1 and 1000."
  }
}

variable "force_delete" {
  description = "Let destroy delete repositories that still hold images. Default false."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
