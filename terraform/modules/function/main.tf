# One Lambda function of imagecore: the function, its own execution role and log group, and a
# policy that allows exactly what its code calls (src/adapters/dynamodb/, src/adapters/s3.py)
# on the table and the bucket's key prefixes, plus whatever the caller adds (the job queue).

locals {
  kms_key_arns = var.kms_key_arn == null ? [] : [var.kms_key_arn]
}

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
  name               = "${var.name}-lambda"
  description        = "Execution role of the ${var.name} Lambda function"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts log data at rest by default; a customer managed key needs a key policy for logs.<region>.amazonaws.com and is left to deployments that require one.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
}

data "aws_iam_policy_document" "function" {
  source_policy_documents = var.extra_policy_json == null ? [] : [var.extra_policy_json]

  statement {
    sid       = "OwnLogGroup"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid       = "Tracing" # X-Ray has no resource-level permissions for these two actions
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  statement {
    sid       = "Table"
    actions   = var.table_actions
    resources = [var.table_arn]
  }

  statement {
    sid       = "TableIndexes"
    actions   = ["dynamodb:Query"]
    resources = var.index_arns
  }

  # HeadBucket at start-up, and the listings of derivatives and of reconciliation.
  statement {
    sid       = "BucketList"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  # One statement per key prefix (BucketObjectsImages on <bucket>/images/*, ...), never the
  # whole bucket: the API may put under uploads/ (what its presigned POSTs upload) but not read
  # there, reconcile never writes, and so on.
  dynamic "statement" {
    for_each = var.object_actions
    content {
      sid       = "BucketObjects${title(trimsuffix(statement.key, "/"))}"
      actions   = statement.value
      resources = ["${var.bucket_arn}/${statement.key}*"]
    }
  }

  # The token secret (SecureString), read once per cold start: this one parameter, no other.
  # Its AWS managed key (alias/aws/ssm) lets any role of the account that may read the
  # parameter decrypt it; a customer managed key is allowed just below.
  dynamic "statement" {
    for_each = var.secret_parameter_arn == null ? [] : [var.secret_parameter_arn]
    content {
      sid       = "TokenSecret"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
  }

  # The CDN's private signing key (SecureString), read once per cold start by the function that
  # hands out download links: this one parameter, under the same key rules as the token secret.
  dynamic "statement" {
    for_each = var.signing_key_parameter_arn == null ? [] : [var.signing_key_parameter_arn]
    content {
      sid       = "CdnSigningKey"
      actions   = ["ssm:GetParameter"]
      resources = [statement.value]
    }
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
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117: Not in a VPC on purpose: the functions only call AWS APIs (DynamoDB, S3, SQS) over TLS with IAM; a VPC would add NAT or endpoints and cold-start cost for no reachable private resource.
  #checkov:skip=CKV_AWS_272: Code signing needs an AWS Signer profile and a signed build pipeline; the zip is built from this repository by CI and deployed by the same Terraform.
  #checkov:skip=CKV_AWS_116: A function DLQ serves asynchronous invocations only: API Gateway calls the API synchronously (the caller gets the error), the worker's failures go to its queue's dead-letter queue, and reconcile, invoked asynchronously by EventBridge, has an on-failure destination (aws_lambda_function_event_invoke_config in modules/processing), the newer form of a DLQ that this check does not see.
  function_name    = var.name
  description      = var.description
  role             = aws_iam_role.function.arn
  handler          = var.handler
  runtime          = var.runtime
  architectures    = [var.architecture]
  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  timeout          = var.timeout_seconds
  memory_size      = var.memory_mb
  kms_key_arn      = var.kms_key_arn

  # null (the default) leaves the function in the account's unreserved pool: reserving on a new
  # account, which may have only 10 concurrent executions, fails.
  reserved_concurrent_executions = var.reserved_concurrency == null ? -1 : var.reserved_concurrency

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  # JSON makes Lambda's own lines (START, END, REPORT) JSON as well, filters the app's lines by
  # application_log_level (passed to the app as AWS_LAMBDA_LOG_LEVEL) and names the log group.
  # The app writes its lines as JSON in either format.
  dynamic "logging_config" {
    for_each = var.json_logs ? [1] : []
    content {
      log_format            = "JSON"
      log_group             = aws_cloudwatch_log_group.function.name
      application_log_level = var.log_level
      system_log_level      = "INFO"
    }
  }

  depends_on = [aws_iam_role_policy.function, aws_cloudwatch_log_group.function]
}
