variable "name" {
  description = "Name prefix of every resource of the module. 1-32 characters: lowercase letters, digits and '-'. Required."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9-]{1,32}$", var.name))
    error_message = "name must be 1-32 characters of lowercase letters, digits or '-'."
  }
}

variable "create_vpc" {
  description = "true: create a VPC with private subnets (and a NAT gateway, see enable_nat_gateway). false: use vpc_id and private_subnet_ids as given. Default true."
  type        = bool
  default     = true
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC when create_vpc = true; prefix length /16 to /24 (subnets are /prefix+4). Default \"10.40.0.0/16\"."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 24
    error_message = "vpc_cidr must be an IPv4 CIDR with a prefix length between /16 and /24."
  }
}

variable "az_count" {
  description = "Number of availability zones (one private subnet each) when create_vpc = true. Range 2-6. Default 2."
  type        = number
  default     = 2

  validation {
    condition     = var.az_count >= 2 && var.az_count <= 6 && floor(var.az_count) == var.az_count
    error_message = "az_count must be a whole number between 2 and 6."
  }
}

variable "enable_nat_gateway" {
  description = "Create public subnets with one NAT gateway so private subnets reach AWS APIs and model providers over the internet. Set false only if you provide VPC endpoints yourself. Default true."
  type        = bool
  default     = true
}

variable "vpc_id" {
  description = "Existing VPC id, used (and required) when create_vpc = false. Default null."
  type        = string
  default     = null

  validation {
    condition     = var.create_vpc || (var.vpc_id != null && length(var.private_subnet_ids) >= 2)
    error_message = "create_vpc = false needs vpc_id and at least 2 private_subnet_ids."
  }
}

variable "private_subnet_ids" {
  description = "Existing private subnet ids (at least 2, in different AZs, with a route to AWS APIs), used when create_vpc = false. Default []."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.private_subnet_ids) == 0 || length(var.private_subnet_ids) >= 2
    error_message = "private_subnet_ids must be empty or name at least 2 subnets."
  }
}

variable "log_retention_days" {
  description = "Retention of the VPC flow log group, in days; one of the values CloudWatch Logs accepts (1-3653). Default 365."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "kms_key_arn" {
  description = "ARN of the KMS key that encrypts the flow log group. Required."
  type        = string
}

variable "tags" {
  description = "Tags added to every resource of the module. Default {}."
  type        = map(string)
  default     = {}
}
