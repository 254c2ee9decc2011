# The HTTP API: a container-image Lambda (FastAPI + Mangum) behind an API Gateway HTTP API with
# explicit routes (no catch-all: an unknown path is a 404 at the gateway and costs no invocation).
# The application authenticates callers with its own API keys and webhook signatures; an optional
# JWT authorizer can sit in front of every route except the public ones.

locals {
  jwt_enabled = var.jwt_issuer != null

  routes = toset([
    "POST /tasks",
    "GET /tasks",
    "GET /tasks/{id}",
    "POST /tasks/{id}/cancel",
    "POST /tasks/batch",
    "GET /workflows",
    "GET /workflows/{name}",
    "PUT /workflows/{name}",
    "DELETE /workflows/{name}",
    "POST /workflows/{name}/{action}",
    "GET /workflows/{name}/executions",
    "GET /workflows/{name}/preview",
    "POST /webhooks/{source}",
    "GET /health",
    "GET /version",
    "GET /openapi.json",
    "GET /docs",
  ])

  # Reachable without a JWT even when the authorizer is on: signed webhooks, probes, the schema.
  public_routes = toset([
    "POST /webhooks/{source}",
    "GET /health",
    "GET /version",
    "GET /openapi.json",
    "GET /docs",
  ])

  environment = merge(
    {
      CONVEYOR_DATABASE_URL    = var.database_url_secret_arn
      CONVEYOR_QUEUE_URL       = var.queue_url
      CONVEYOR_QUEUE_NAME      = var.queue_name
      CONVEYOR_DLQ_URL         = var.dlq_url
      CONVEYOR_REGION          = var.region
      CONVEYOR_LOG_FORMAT      = "json"
      CONVEYOR_LOG_LEVEL       = var.log_level
      CONVEYOR_WEBHOOK_SECRETS = var.webhook_secrets_secret_arn
      CONVEYOR_ENVIRONMENT     = var.environment_name
    },
    var.environment_variables,
  )
}

resource "aws_cloudwatch_log_group" "access" {
  name              = "/aws/apigateway/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------- function

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "EnqueueExecutions"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_url_secret_arn, var.webhook_secrets_secret_arn]
  }
}

module "function" {
  source = "../lambda_function"

  name                 = var.name
  description          = "Conveyor HTTP API (FastAPI behind API Gateway HTTP API)"
  image_uri            = var.image_uri
  handler              = "api.handler.handler"
  architecture         = var.architecture
  timeout_seconds      = var.timeout_seconds
  memory_size          = var.memory_size
  reserved_concurrency = var.reserved_concurrency
  environment          = local.environment
  policy_name          = "api"
  policy_json          = data.aws_iam_policy_document.this.json
  vpc_id               = var.vpc_id
  subnet_ids           = var.subnet_ids
  security_group_ids   = var.security_group_ids
  kms_key_arn          = var.kms_key_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

# ---------------------------------------------------------------- HTTP API

resource "aws_apigatewayv2_api" "this" {
  name          = var.name
  description   = "Conveyor HTTP API"
  protocol_type = "HTTP"
  tags          = var.tags
}

resource "aws_apigatewayv2_integration" "lambda" {
  api_id                 = aws_apigatewayv2_api.this.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = module.function.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.timeout_seconds * 1000
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  count            = local.jwt_enabled ? 1 : 0
  api_id           = aws_apigatewayv2_api.this.id
  name             = "jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_route" "this" {
  #checkov:skip=CKV_AWS_309:The application authenticates every non-public route with its own API keys (and webhooks with signatures); the gateway JWT authorizer is optional (jwt_issuer) and applied to all non-public routes when set.
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.this.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.lambda.id}"
  authorization_type = local.jwt_enabled && !contains(local.public_routes, each.key) ? "JWT" : "NONE"
  authorizer_id      = local.jwt_enabled && !contains(local.public_routes, each.key) ? aws_apigatewayv2_authorizer.jwt[0].id : null
}

resource "aws_apigatewayv2_stage" "this" {
  api_id      = aws_apigatewayv2_api.this.id
  name        = "$default"
  auto_deploy = true
  tags        = var.tags

  default_route_settings {
    throttling_burst_limit   = var.throttling_burst_limit
    throttling_rate_limit    = var.throttling_rate_limit
    detailed_metrics_enabled = true
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      ip                 = "$context.identity.sourceIp"
      requestTime        = "$context.requestTime"
      httpMethod         = "$context.httpMethod"
      routeKey           = "$context.routeKey"
      path               = "$context.path"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      authorizerError    = "$context.authorizer.error"
    })
  }
}

resource "aws_lambda_permission" "apigateway" {
  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.this.execution_arn}/*/*"
}
