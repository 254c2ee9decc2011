output "instance_id" {
  description = "Identifier of the RDS instance."
  value       = aws_db_instance.this.identifier
}

output "address" {
  description = "Host name of the instance (private)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "PostgreSQL port."
  value       = aws_db_instance.this.port
}

output "url_secret_arn" {
  description = "ARN of the secret holding the full database URL (give it as CONVEYOR_DATABASE_URL)."
  value       = aws_secretsmanager_secret.url.arn
}

output "client_security_group_id" {
  description = "Security group to attach to every component that connects to the database."
  value       = aws_security_group.client.id
}

output "security_group_id" {
  description = "Security group of the database itself."
  value       = aws_security_group.db.id
}
