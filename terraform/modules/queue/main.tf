# The execution queue (a doorbell: it carries execution ids only) and its dead-letter queue.
# The visibility timeout outlasts the longest step, so a message is not redelivered while a worker
# is still running it; a message received max_receive_count times moves to the DLQ.

locals {
  visibility_timeout_seconds = min(43200, var.max_step_timeout_seconds + var.visibility_margin_seconds)
  sse_managed                = var.kms_key_arn == null
}

resource "aws_sqs_queue" "dlq" {
  name                              = "${var.name}-dlq"
  message_retention_seconds         = var.dlq_message_retention_seconds
  sqs_managed_sse_enabled           = local.sse_managed ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_managed ? null : 300
  tags                              = var.tags
}

resource "aws_sqs_queue" "this" {
  name                              = var.name
  visibility_timeout_seconds        = local.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20
  sqs_managed_sse_enabled           = local.sse_managed ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = local.sse_managed ? null : 300
  tags                              = var.tags

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

# Only the execution queue may use the DLQ as its dead-letter target.
# Emulator: moto never reports this attribute as settled, so emulator_mode skips it.
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  count     = var.emulator_mode ? 0 : 1
  queue_url = aws_sqs_queue.dlq.id

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this.arn]
  })
}
