# Background work: the worker Lambda that consumes the job queue (thumbnail jobs; direct uploads
# announced by S3; the queue itself is modules/queue), and the reconcile Lambda run on a
# schedule (finishes interrupted deletes, removes orphaned blobs: see docs/architecture.md, Use cases).

data "aws_caller_identity" "current" {}

locals {
  functions = {
    worker = {
      handler     = "entrypoints.aws_lambda.worker.handler"
      description = "imagecore worker: thumbnails and direct uploads, from the job queue"
      timeout     = var.worker_timeout_seconds
      memory_size = var.worker_memory_mb
      reserved    = var.worker_reserved_concurrency
    }
    reconcile = {
      handler     = "entrypoints.aws_lambda.reconcile.handler"
      description = "imagecore reconcile: finishes interrupted deletes, removes orphans, requeues lost jobs"
      timeout     = var.reconcile_timeout_seconds
      memory_size = var.reconcile_memory_mb
      reserved    = var.reconcile_reserved_concurrency
    }
  }
  function_names = { for name, _ in local.functions : name => "${var.name_prefix}-${name}" }
}

# --- functions: one role, one log group, one least-privilege policy each (modules/function) ---

# What the adapters call (src/adapters/dynamodb/, src/adapters/s3.py):
#   DynamoDB  DescribeTable (start-up check), GetItem, BatchGetItem, Query (on the indexes),
#             TransactWriteItems = PutItem + UpdateItem + DeleteItem + ConditionCheckItem per item;
#             reconcile also Scans the table (for interrupted deletes).
#   S3        HeadBucket and ListObjectsV2 (ListBucket), PutObject incl. multipart (PutObject,
#             AbortMultipartUpload), GetObject (HeadObject too), DeleteObject(s), each only under
#             the key prefixes the function works on (src/imagecore/service.py):
#             images/<user>/<id>[/thumbnail]  the worker reads originals and writes thumbnails,
#                                             and writes a completed upload's image (removing it
#                                             again if its metadata cannot be stored), or has S3
#                                             copy an upload session's file there (CopyObject:
#                                             GetObject on the source, PutObject here);
#             uploads/<user>/<upload id>      the worker reads a direct upload, then removes it;
#             reconcile reads and removes bytes under both, but never writes them, and aborts
#             the multipart upload of an upload session that expired.
#   SQS       the worker consumes the job queue, and sends thumbnail jobs to it (sqs:SendMessage
#             on IMAGECORE_QUEUE_URL); reconcile sends again the thumbnail jobs of images whose
#             thumbnail is still pending long after their upload (a lost or dead-lettered job).
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
    worker = {
      "images/"  = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      "uploads/" = ["s3:GetObject", "s3:DeleteObject"]
    }
    reconcile = {
      "images/"  = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
      "uploads/" = ["s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"] # an expired upload session's parts
    }
  }
  extra_policy_json = {
    worker    = data.aws_iam_policy_document.worker_queue.json
    reconcile = data.aws_iam_policy_document.reconcile_queue.json
  }
}

data "aws_iam_policy_document" "worker_queue" {
  statement {
    sid       = "JobQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "JobQueueSend" # thumbnail jobs of the images it makes from direct uploads
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }
}

data "aws_iam_policy_document" "reconcile_queue" {
  statement {
    sid       = "JobQueueSend" # thumbnail jobs queued again
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }

  # Lambda sends a failed asynchronous invocation's record to its destination as the function's
  # own execution role.
  statement {
    sid       = "FailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.reconcile_failures.arn]
  }
}

# EventBridge invokes reconcile asynchronously: a run that fails (an error, a timeout) is tried
# again maximum_retry_attempts times, then recorded here, with the event and the error, instead
# of vanishing. An alarm watches the queue's depth (modules/alarms).
resource "aws_sqs_queue" "reconcile_failures" {
  name                      = "${local.function_names["reconcile"]}-failures"
  message_retention_seconds = 1209600 # 14 days, the most SQS keeps: time to look at what failed
  sqs_managed_sse_enabled   = true
}

resource "aws_lambda_function_event_invoke_config" "reconcile" {
  function_name                = module.function["reconcile"].function_name
  maximum_retry_attempts       = var.reconcile_retry_attempts
  maximum_event_age_in_seconds = var.reconcile_max_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.reconcile_failures.arn
    }
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
  json_logs            = var.json_logs
  log_level            = var.log_level

  table_arn         = var.table_arn
  index_arns        = var.index_arns
  table_actions     = local.table_actions[each.key]
  bucket_arn        = var.bucket_arn
  object_actions    = local.object_actions[each.key]
  extra_policy_json = local.extra_policy_json[each.key]

  secret_parameter_arn = var.secret_parameter_arn
}

# --- triggers --------------------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn        = var.queue_arn
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
