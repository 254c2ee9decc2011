# The workers: Celery on ECS Fargate consuming the execution queue. The service keeps
# desired_count at creation; afterwards Application Auto Scaling (target tracking on the
# BacklogPerWorker metric the scheduler publishes) and `conveyor workers scale N` own it, within
# [min_count, max_count]. SIGTERM starts Celery's warm shutdown; ECS waits stop_timeout (120 s, the
# Fargate maximum) before SIGKILL, and an unfinished execution is recovered through its lease.

data "aws_partition" "current" {}

locals {
  partition         = data.aws_partition.current.partition
  container_name    = "worker"
  scaling_resource  = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  lambda_targets    = distinct(concat(var.lambda_function_arns, [for a in var.lambda_function_arns : "${a}:*"]))
  secret_arns       = compact([var.database_url_secret_arn, var.anthropic_api_key_secret_arn])
  anthropic_key_env = var.anthropic_api_key_secret_arn == null ? {} : { CONVEYOR_ANTHROPIC_API_KEY = var.anthropic_api_key_secret_arn }
  container_env_base = {
    CONVEYOR_DATABASE_URL               = var.database_url_secret_arn
    CONVEYOR_QUEUE_URL                  = var.queue_url
    CONVEYOR_QUEUE_NAME                 = var.queue_name
    CONVEYOR_DLQ_URL                    = var.dlq_url
    CONVEYOR_VISIBILITY_TIMEOUT_SECONDS = tostring(var.visibility_timeout_seconds)
    CONVEYOR_WORKER_CONCURRENCY         = tostring(var.concurrency)
    CONVEYOR_REGION                     = var.region
    CONVEYOR_LOG_FORMAT                 = "json"
    CONVEYOR_LOG_LEVEL                  = var.log_level
    CONVEYOR_ECS_CLUSTER                = var.name
    CONVEYOR_ECS_SERVICE                = var.name
    CONVEYOR_ENVIRONMENT                = var.environment_name
    CONVEYOR_HOME                       = "/tmp/conveyor"
  }
  environment = merge(local.container_env_base, local.anthropic_key_env, var.environment_variables)
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_ecs_cluster" "this" {
  name = var.name
  tags = var.tags

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

# ---------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# Execution role: what ECS itself needs to start the task (pull the image, ship the logs).
resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "execution" {
  # GetAuthorizationToken has no resource type.
  statement {
    sid       = "EcrLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullWorkerImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "DecryptWorkerImage"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "start-worker-task"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# Task role: what the worker process may do.
resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid = "ConsumeAndRequeueExecutions"
    actions = [
      "sqs:ReceiveMessage",
      "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
      "sqs:GetQueueUrl",
      "sqs:SendMessage",
    ]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "ReadOwnSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }

  dynamic "statement" {
    for_each = length(var.lambda_function_arns) > 0 ? [1] : []
    content {
      sid       = "InvokeWorkflowLambdas"
      actions   = ["lambda:InvokeFunction"]
      resources = local.lambda_targets
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "worker"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

# ---------------------------------------------------------------- network

resource "aws_security_group" "this" {
  name        = var.name
  description = "Worker tasks of ${var.name}: out to AWS APIs and step targets only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = var.name })

  dynamic "egress" {
    for_each = toset(var.egress_ports)
    content {
      description = "TCP ${egress.value} out (AWS APIs, model providers, http steps)"
      protocol    = "tcp"
      from_port   = egress.value
      to_port     = egress.value
      cidr_blocks = ["0.0.0.0/0"]
    }
  }
}

# ---------------------------------------------------------------- task and service

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  tags                     = var.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.architecture
  }

  # The only writable path: the root filesystem is read-only.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([{
    name                   = local.container_name
    image                  = var.image_uri
    essential              = true
    command                = ["conveyor", "worker"]
    readonlyRootFilesystem = true
    privileged             = false
    stopTimeout            = var.stop_timeout_seconds
    environment            = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters        = { initProcessEnabled = true }
    healthCheck = {
      command     = ["CMD", "conveyor", "worker", "--check"]
      interval    = 30
      timeout     = 10
      retries     = 3
      startPeriod = 60
    }
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.this.name
        awslogs-region        = var.region
        awslogs-stream-prefix = local.container_name
      }
    }
  }])
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = "LATEST"
  propagate_tags                     = "SERVICE"
  enable_ecs_managed_tags            = true
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  tags                               = var.tags

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = concat([aws_security_group.this.id], var.security_group_ids)
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  # After creation the count belongs to autoscaling and `conveyor workers scale`.
  lifecycle {
    ignore_changes = [desired_count]
  }
}

# ---------------------------------------------------------------- autoscaling
# Emulator: moto's Application Auto Scaling lacks ListTagsForResource, so emulator_mode skips both.

resource "aws_appautoscaling_target" "this" {
  count              = var.emulator_mode ? 0 : 1
  service_namespace  = "ecs"
  scalable_dimension = "ecs:service:DesiredCount"
  resource_id        = local.scaling_resource
  min_capacity       = var.min_count
  max_capacity       = var.max_count
  tags               = var.tags
}

resource "aws_appautoscaling_policy" "backlog" {
  count              = var.emulator_mode ? 0 : 1
  name               = "${var.name}-backlog-per-worker"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this[0].service_namespace
  scalable_dimension = aws_appautoscaling_target.this[0].scalable_dimension
  resource_id        = aws_appautoscaling_target.this[0].resource_id

  target_tracking_scaling_policy_configuration {
    target_value       = var.backlog_per_worker_target
    scale_in_cooldown  = var.scale_in_cooldown_seconds
    scale_out_cooldown = var.scale_out_cooldown_seconds

    customized_metric_specification {
      namespace   = var.metric_namespace
      metric_name = "BacklogPerWorker"
      statistic   = "Average"

      dimensions {
        name  = "Service"
        value = aws_ecs_service.this.name
      }
    }
  }
}
