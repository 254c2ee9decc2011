output "vpc_id" {
  description = "Id of the VPC (created or given)."
  value       = local.vpc_id
}

output "private_subnet_ids" {
  description = "Ids of the private subnets (created or given)."
  value       = local.subnet_ids
}

output "nat_gateway_ids" {
  description = "Ids of the NAT gateways created (empty when none)."
  value       = aws_nat_gateway.this[*].id
}
