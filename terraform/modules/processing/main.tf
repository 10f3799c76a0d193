# Background work: a job queue (thumbnails; direct uploads announced by S3) with a dead-letter
# queue, the worker Lambda that consumes it, and the reconcile Lambda run on a schedule
# (finishes interrupted deletes, removes orphaned blobs: see DESIGN.md, Consistency).

data "aws_caller_identity" "current" {}

locals {
  functions = {
    worker = {
      handler     = "entrypoints.lambda_worker.handler"
      description = "imagecore worker: thumbnails and direct uploads, from the job queue"
      timeout     = var.worker_timeout_seconds
      memory_size = var.worker_memory_mb
      reserved    = var.worker_reserved_concurrency
    }
    reconcile = {
      handler     = "entrypoints.lambda_reconcile.handler"
      description = "imagecore reconcile: finishes interrupted deletes, removes orphans"
      timeout     = var.reconcile_timeout_seconds
      memory_size = var.reconcile_memory_mb
      reserved    = var.reconcile_reserved_concurrency
    }
  }
  function_names = { for name, _ in local.functions : name => "${var.name_prefix}-${name}" }
}

# --- queues ---------------------------------------------------------------------------------

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-jobs-dlq"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to look at what failed
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "jobs" {
  name                       = "${var.name_prefix}-jobs"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 20
  visibility_timeout_seconds = 6 * var.worker_timeout_seconds # AWS's advice for a Lambda source

  lifecycle {
    # Managed by aws_sqs_queue_redrive_policy.jobs below.
    ignore_changes = [redrive_policy]
  }
}

# A resource of its own rather than the queue's redrive_policy argument: it compares the policy
# as JSON when reading it back, where the queue's argument compares text (and so differs on
# every plan against moto server, which spaces its JSON differently from SQS).
resource "aws_sqs_queue_redrive_policy" "jobs" {
  queue_url = aws_sqs_queue.jobs.id

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "jobs" {
  statement {
    sid       = "S3BucketNotifications"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.jobs.arn]

    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [var.bucket_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  dynamic "statement" {
    for_each = var.require_tls ? ["DenyInsecureTransport"] : []
    content {
      sid       = statement.value
      effect    = "Deny"
      actions   = ["sqs:*"]
      resources = [aws_sqs_queue.jobs.arn]

      principals {
        type        = "*"
        identifiers = ["*"]
      }

      condition {
        test     = "Bool"
        variable = "aws:SecureTransport"
        values   = ["false"]
      }
    }
  }
}

resource "aws_sqs_queue_policy" "jobs" {
  queue_url = aws_sqs_queue.jobs.id
  policy    = data.aws_iam_policy_document.jobs.json

  # One queue attribute at a time: moto server forgets a queue's policy whenever another
  # attribute is set, so the policy goes last. Harmless ordering on AWS.
  depends_on = [aws_sqs_queue_redrive_policy.jobs]
}

# --- functions: one role, one log group, one least-privilege policy each (modules/function) ---

# What the adapters call (src/adapters/dynamodb.py, src/adapters/s3.py):
#   DynamoDB  DescribeTable (start-up check), GetItem, BatchGetItem, Query (on the indexes),
#             TransactWriteItems = PutItem + UpdateItem + DeleteItem + ConditionCheckItem per item;
#             reconcile also Scans the table (for interrupted deletes).
#   S3        HeadBucket and ListObjectsV2 (ListBucket), PutObject incl. multipart (PutObject,
#             AbortMultipartUpload), GetObject (HeadObject too), DeleteObject(s); reconcile
#             reads and removes bytes but never writes them.
locals {
  dynamodb_item_actions = [
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
  ]
  table_actions = {
    worker    = local.dynamodb_item_actions
    reconcile = concat(local.dynamodb_item_actions, ["dynamodb:Scan"])
  }
  object_actions = {
    worker    = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    reconcile = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
  }
  extra_policy_json = {
    worker    = data.aws_iam_policy_document.worker_queue.json
    reconcile = null
  }
}

data "aws_iam_policy_document" "worker_queue" {
  statement {
    sid       = "JobQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.jobs.arn]
  }
}

module "function" {
  source   = "../function"
  for_each = local.functions

  name                 = local.function_names[each.key]
  description          = each.value.description
  handler              = each.value.handler
  lambda_zip           = var.lambda_zip
  runtime              = var.runtime
  architecture         = var.architecture
  timeout_seconds      = each.value.timeout
  memory_mb            = each.value.memory_size
  reserved_concurrency = each.value.reserved
  environment          = var.environment
  kms_key_arn          = var.kms_key_arn
  tracing_mode         = var.tracing_mode
  log_retention_days   = var.log_retention_days

  table_arn         = var.table_arn
  index_arns        = var.index_arns
  table_actions     = local.table_actions[each.key]
  bucket_arn        = var.bucket_arn
  object_actions    = local.object_actions[each.key]
  extra_policy_json = local.extra_policy_json[each.key]
}

# --- triggers --------------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn        = aws_sqs_queue.jobs.arn
  function_name           = module.function["worker"].arn
  batch_size              = 10
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.worker_max_concurrency == null ? [] : [var.worker_max_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }
}

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${local.function_names["reconcile"]}-schedule"
  description         = "Runs ${local.function_names["reconcile"]} on a schedule"
  schedule_expression = var.reconcile_schedule_expression
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule = aws_cloudwatch_event_rule.reconcile.name
  arn  = module.function["reconcile"].arn
}

resource "aws_lambda_permission" "reconcile_schedule" {
  statement_id   = "AllowScheduledReconcile"
  action         = "lambda:InvokeFunction"
  function_name  = module.function["reconcile"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.reconcile.arn
  source_account = data.aws_caller_identity.current.account_id
}
