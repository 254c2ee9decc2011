# The scheduler: a container-image Lambda fired by EventBridge every minute. Each tick claims due
# workflows, writes executions, enqueues them, runs the sweeper and publishes the backlog-per-worker
# metric the workers autoscale on. Reserved concurrency 1: ticks never overlap (the tick is
# idempotent anyway; this keeps it cheap).

data "aws_partition" "current" {}

locals {
  partition = data.aws_partition.current.partition
  environment = merge(
    {
      CONVEYOR_DATABASE_URL = var.database_url_secret_arn
      CONVEYOR_QUEUE_URL    = var.queue_url
      CONVEYOR_QUEUE_NAME   = var.queue_name
      CONVEYOR_DLQ_URL      = var.dlq_url
      CONVEYOR_REGION       = var.region
      CONVEYOR_LOG_FORMAT   = "json"
      CONVEYOR_LOG_LEVEL    = var.log_level
      CONVEYOR_ECS_CLUSTER  = var.ecs_cluster_name
      CONVEYOR_ECS_SERVICE  = var.ecs_service_name
      CONVEYOR_ENVIRONMENT  = var.environment_name
    },
    var.environment_variables,
  )
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

# ENIs in the VPC (AWS-managed; the EC2 network-interface actions cannot be scoped to resources).
resource "aws_iam_role_policy_attachment" "vpc" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_iam_role_policy_attachment" "xray" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AWSXRayDaemonWriteAccess"
}

data "aws_iam_policy_document" "this" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  statement {
    sid       = "EnqueueExecutionsAndMeasureBacklog"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "ReadDatabaseUrl"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.database_url_secret_arn]
  }

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "CountRunningWorkers"
    actions   = ["ecs:DescribeServices"]
    resources = [var.ecs_service_arn]
  }

  # PutMetricData has no resource type: the namespace condition is what scopes it.
  statement {
    sid       = "PublishBacklogMetric"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
}

resource "aws_iam_role_policy" "this" {
  name   = "scheduler"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# ---------------------------------------------------------------- network

resource "aws_security_group" "this" {
  name        = var.name
  description = "Scheduler Lambda of ${var.name}: HTTPS out to AWS APIs"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = var.name })

  egress {
    description = "HTTPS to AWS APIs (SQS, Secrets Manager, ECS, CloudWatch)"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# ---------------------------------------------------------------- function

resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_116:Invoked asynchronously by EventBridge every minute with retries off; a failed tick is superseded by the next one, and the sweeper recovers anything it left behind, so a DLQ would only collect stale ticks.
  #checkov:skip=CKV_AWS_272:Container-image function: Lambda code signing applies to .zip packages only; image provenance is ECR's immutable tags and scan on push.
  function_name                  = var.name
  description                    = "Conveyor scheduler tick (claim due workflows, enqueue, sweep, publish backlog)"
  role                           = aws_iam_role.this.arn
  package_type                   = "Image"
  image_uri                      = var.image_uri
  architectures                  = [var.architecture]
  timeout                        = var.timeout_seconds
  memory_size                    = var.memory_size
  reserved_concurrent_executions = 1
  kms_key_arn                    = var.kms_key_arn
  tags                           = var.tags

  image_config {
    command = ["scheduler.handler.handler"]
  }

  environment {
    variables = local.environment
  }

  tracing_config {
    mode = "Active"
  }

  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = concat([aws_security_group.this.id], var.security_group_ids)
  }

  depends_on = [
    aws_cloudwatch_log_group.this,
    aws_iam_role_policy.this,
    aws_iam_role_policy_attachment.vpc,
  ]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = 0
  maximum_event_age_in_seconds = 60
}

# ---------------------------------------------------------------- schedule

resource "aws_cloudwatch_event_rule" "tick" {
  name                = "${var.name}-tick"
  description         = "Conveyor scheduler tick"
  schedule_expression = var.schedule_expression
  state               = var.enabled ? "ENABLED" : "DISABLED"
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "tick" {
  rule      = aws_cloudwatch_event_rule.tick.name
  target_id = "scheduler"
  arn       = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEventBridgeTick"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.tick.arn
}
