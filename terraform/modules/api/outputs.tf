output "api_id" {
  description = "Id of the HTTP API."
  value       = aws_apigatewayv2_api.this.id
}

output "api_endpoint" {
  description = "Base URL of the API (the $default stage)."
  value       = aws_apigatewayv2_api.this.api_endpoint
}

output "stage_name" {
  description = "Name of the stage ($default)."
  value       = aws_apigatewayv2_stage.this.name
}

output "route_keys" {
  description = "Route keys of the API."
  value       = sort(keys(aws_apigatewayv2_route.this))
}

output "function_name" {
  description = "Name of the API function."
  value       = module.function.function_name
}

output "function_arn" {
  description = "ARN of the API function."
  value       = module.function.function_arn
}
