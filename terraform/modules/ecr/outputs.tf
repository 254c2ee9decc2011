output "repository_urls" {
  description = "Repository URL by deployable name (push <url>:<tag>)."
  value       = { for k, r in aws_ecr_repository.this : k => r.repository_url }
}

output "repository_arns" {
  description = "Repository ARN by deployable name."
  value       = { for k, r in aws_ecr_repository.this : k => r.arn }
}
