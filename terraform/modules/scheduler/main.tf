# The scheduler: a container-image Lambda fired by EventBridge every minute. Each tick claims due
# workflows, writes executions, enqueues them, runs the sweeper and publishes the backlog-per-worker
# metric the workers autoscale on. Reserved concurrency 1: ticks never overlap (the tick is
# idempotent anyway; this keeps it cheap).

locals {
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

data "aws_iam_policy_document" "this" {
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

module "function" {
  source = "../lambda_function"

  name                 = var.name
  description          = "Conveyor scheduler tick (claim due workflows, enqueue, sweep, publish backlog)"
  image_uri            = var.image_uri
  handler              = "scheduler.handler.handler"
  architecture         = var.architecture
  timeout_seconds      = var.timeout_seconds
  memory_size          = var.memory_size
  reserved_concurrency = 1
  environment          = local.environment
  policy_name          = "scheduler"
  policy_json          = data.aws_iam_policy_document.this.json
  vpc_id               = var.vpc_id
  subnet_ids           = var.subnet_ids
  security_group_ids   = var.security_group_ids
  kms_key_arn          = var.kms_key_arn
  log_retention_days   = var.log_retention_days
  tags                 = var.tags
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = module.function.function_name
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
  arn       = module.function.function_arn
}

resource "aws_lambda_permission" "events" {
  statement_id  = "AllowEventBridgeTick"
  action        = "lambda:InvokeFunction"
  function_name = module.function.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.tick.arn
}
