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
  kms_key_arns   = var.kms_key_arn == null ? [] : [var.kms_key_arn]
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

# --- functions: one role, one log group each -----------------------------------------------

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name               = "${local.function_names[each.key]}-lambda"
  description        = "Execution role of the ${local.function_names[each.key]} Lambda function"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts log data at rest by default; a customer managed key needs a key policy for logs.<region>.amazonaws.com and is left to deployments that require one.
  for_each = local.functions

  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
}

# What the adapters call (src/adapters/dynamodb.py, src/adapters/s3.py):
#   DynamoDB  DescribeTable (start-up check), GetItem, BatchGetItem, Query (on the indexes),
#             TransactWriteItems = PutItem + UpdateItem + DeleteItem + ConditionCheckItem per item;
#             reconcile also Scans the table.
#   S3        HeadBucket (ListBucket), PutObject incl. multipart (PutObject, AbortMultipartUpload),
#             GetObject (HeadObject too), DeleteObject(s), ListObjectsV2 (ListBucket).
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
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["worker"].arn}:*"]
  }

  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these two actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "JobQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.jobs.arn]
  }

  statement {
    sid       = "Table"
    actions   = local.dynamodb_item_actions
    resources = [var.table_arn]
  }

  statement {
    sid       = "TableIndexes"
    actions   = ["dynamodb:Query"]
    resources = var.index_arns
  }

  statement {
    sid       = "BucketList"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "BucketObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/*"]
  }

  dynamic "statement" {
    for_each = local.kms_key_arns
    content {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

data "aws_iam_policy_document" "reconcile" {
  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function["reconcile"].arn}:*"]
  }

  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these two actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "Table"
    actions   = concat(local.dynamodb_item_actions, ["dynamodb:Scan"])
    resources = [var.table_arn]
  }

  statement {
    sid       = "TableIndexes"
    actions   = ["dynamodb:Query"]
    resources = var.index_arns
  }

  statement {
    sid       = "BucketList"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  # Reconcile reads and removes blobs; it never writes one.
  statement {
    sid       = "BucketObjects"
    actions   = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${var.bucket_arn}/*"]
  }

  dynamic "statement" {
    for_each = local.kms_key_arns
    content {
      sid       = "Key"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = {
    worker    = data.aws_iam_policy_document.worker.json
    reconcile = data.aws_iam_policy_document.reconcile.json
  }

  name   = "${local.function_names[each.key]}-least-privilege"
  role   = aws_iam_role.function[each.key].id
  policy = each.value
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117: Not in a VPC on purpose: the functions only call AWS APIs (DynamoDB, S3, SQS) over TLS with IAM; a VPC would add NAT or endpoints and cold-start cost for no reachable private resource.
  #checkov:skip=CKV_AWS_272: Code signing needs an AWS Signer profile and a signed build pipeline; the zip is built from this repository by CI and deployed by the same Terraform.
  #checkov:skip=CKV_AWS_116: The worker is invoked by an SQS event source mapping, whose failures go to the queue's own dead-letter queue (redrive policy); the reconcile run is idempotent and the next scheduled run retries it. A function DLQ only applies to asynchronous invokes.
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = each.value.description
  role             = aws_iam_role.function[each.key].arn
  handler          = each.value.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  timeout          = each.value.timeout
  memory_size      = each.value.memory_size
  kms_key_arn      = var.kms_key_arn

  # null (the default) leaves the function in the account's unreserved pool: reserving on a new
  # account, which may have only 10 concurrent executions, fails.
  reserved_concurrent_executions = each.value.reserved == null ? -1 : each.value.reserved

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}

# --- triggers --------------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn        = aws_sqs_queue.jobs.arn
  function_name           = aws_lambda_function.function["worker"].arn
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
  arn  = aws_lambda_function.function["reconcile"].arn
}

resource "aws_lambda_permission" "reconcile_schedule" {
  statement_id   = "AllowScheduledReconcile"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.function["reconcile"].function_name
  principal      = "events.amazonaws.com"
  source_arn     = aws_cloudwatch_event_rule.reconcile.arn
  source_account = data.aws_caller_identity.current.account_id
}
