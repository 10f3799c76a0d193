# What tells a person that imagecore is in trouble: CloudWatch alarms on the signals that each
# mean a user is failed or work is piling up, sent to one SNS topic (and, opted in, by e-mail).
#
#   API Gateway  5xx answers of the HTTP API's stage (the app's 500s, integration failures,
#                Lambda errors and timeouts seen by callers)
#   Lambda       Errors and Throttles of every function (api, worker, reconcile)
#   SQS          a message in the jobs' dead-letter queue (a job failed max_receive_count
#                times) or in the reconcile failures queue (a scheduled run failed every retry)
#   DynamoDB     read or write throttle events on the table or any of its indexes
#
# Each alarm also sends OK, so a notification that something broke is followed by one that it
# stopped. No data is no trouble (treat_missing_data = notBreaching): an idle service is fine.

data "aws_caller_identity" "current" {}

locals {
  alarm_actions = [aws_sns_topic.alarms.arn]

  queues = {
    "jobs-dead-letter"   = var.dead_letter_queue_name
    "reconcile-failures" = var.reconcile_failures_queue_name
  }

  # The table's and each index's read and write throttle events: the table's own metrics do not
  # count an index's throttling, which also throttles the table's writes.
  dynamodb_throttles = merge([
    for source in concat(["table"], var.index_names) : {
      for operation in ["Read", "Write"] :
      "${source}-${lower(operation)}" => {
        what   = source == "table" ? "the table ${var.table_name}" : "the index ${source} of ${var.table_name}"
        metric = "${operation}ThrottleEvents"
        dimensions = merge(
          { TableName = var.table_name },
          source == "table" ? {} : { GlobalSecondaryIndexName = source },
        )
      }
    }
  ]...)
}

# --- where the alarms go -----------------------------------------------------------------------

# A key of the alarms' own: CloudWatch must be allowed to use the topic's key, and the AWS
# managed alias/aws/sns key's policy cannot be changed to allow it (alarms on a topic encrypted
# with it are dropped without a word).
resource "aws_kms_key" "alarms" {
  description             = "Encrypts the ${var.name_prefix} alarms topic; usable by CloudWatch"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:aws:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchPublishesAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "alarms" {
  name          = "alias/${var.name_prefix}-alarms"
  target_key_id = aws_kms_key.alarms.key_id
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.alarms.arn
}

# Opt-in: AWS mails a confirmation link first, and sends nothing until it is followed.
resource "aws_sns_topic_subscription" "email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# --- the alarms --------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "The HTTP API answered more than ${var.api_5xx_threshold} requests with a 5xx in ${var.period_seconds} s: look at the api function's logs and errors."
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = var.api_id, Stage = var.api_stage }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.api_5xx_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = var.function_names

  alarm_name          = "${each.value}-errors"
  alarm_description   = "The ${each.key} function failed more than ${var.lambda_errors_threshold} invocations in ${var.period_seconds} s (an exception or a timeout): look at its logs."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lambda_errors_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_throttles" {
  for_each = var.function_names

  alarm_name          = "${each.value}-throttles"
  alarm_description   = "Lambda refused more than ${var.lambda_throttles_threshold} invocations of the ${each.key} function in ${var.period_seconds} s for want of concurrency: raise its reserved concurrency or the account's limit."
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = each.value }
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.lambda_throttles_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# Any message at all: each is work that failed for good and waits for a person.
resource "aws_cloudwatch_metric_alarm" "queue_depth" {
  for_each = local.queues

  alarm_name          = "${each.value}-not-empty"
  alarm_description   = "The queue ${each.value} holds messages that failed every attempt: read them (docs/operations.md), fix the cause, then redrive or delete them."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value }
  statistic           = "Maximum"
  period              = var.period_seconds
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_throttles" {
  for_each = local.dynamodb_throttles

  alarm_name          = "${var.table_name}-${each.key}-throttled"
  alarm_description   = "DynamoDB counted more than ${var.dynamodb_throttles_threshold} ${each.value.metric} on ${each.value.what} in ${var.period_seconds} s: a hot key, or an account or table limit reached."
  namespace           = "AWS/DynamoDB"
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = "Sum"
  period              = var.period_seconds
  evaluation_periods  = var.evaluation_periods
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.dynamodb_throttles_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
