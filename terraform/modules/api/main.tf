# The public HTTP API: API Gateway (HTTP API, payload format 2.0) in front of one Lambda function
# that runs the whole app (src/entrypoints). The JWT authorizer verifies bearer tokens; the app
# reads the user from the authorizer's claims only, never from a header it could be sent.

locals {
  function_name = "${var.name_prefix}-api"
  kms_key_arns  = var.kms_key_arn == null ? [] : [var.kms_key_arn]

  # Every route that reads or changes images needs a valid token.
  protected_routes = toset([
    "POST /images",
    "GET /images",
    "GET /images/{image_id}",
    "PATCH /images/{image_id}",
    "DELETE /images/{image_id}",
    "GET /images/{image_id}/download",
    "GET /images/{image_id}/thumbnail",
    "POST /uploads",
  ])

  # Open by design: health, the API's own documentation, and $default, so that a wrong method
  # or path reaches the app and gets its 404/405 in the service's error format (the app answers
  # nothing else without the authorizer's claims).
  public_routes = toset([
    "GET /health",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/{proxy+}",
    "$default",
  ])
}

# --- the function ----------------------------------------------------------------------------

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

resource "aws_iam_role" "api" {
  name               = "${local.function_name}-lambda"
  description        = "Execution role of the ${local.function_name} Lambda function"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

resource "aws_cloudwatch_log_group" "function" {
  #checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts log data at rest by default; a customer managed key needs a key policy for logs.<region>.amazonaws.com and is left to deployments that require one.
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
}

# What the adapters call (src/adapters/dynamodb.py, src/adapters/s3.py): DescribeTable,
# GetItem, BatchGetItem, Query (indexes), TransactWriteItems (= PutItem, UpdateItem, DeleteItem,
# ConditionCheckItem per item); S3 HeadBucket/ListObjectsV2 (ListBucket), PutObject (multipart
# included, and what a presigned POST signed by this role uploads), AbortMultipartUpload,
# GetObject (HeadObject, presigned GET), DeleteObject(s). No Scan: every list is a Query.
data "aws_iam_policy_document" "api" {
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
    sid = "Table"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:Query",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:ConditionCheckItem",
    ]
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

resource "aws_iam_role_policy" "api" {
  name   = "${local.function_name}-least-privilege"
  role   = aws_iam_role.api.id
  policy = data.aws_iam_policy_document.api.json
}

resource "aws_lambda_function" "api" {
  #checkov:skip=CKV_AWS_117: Not in a VPC on purpose: the function only calls AWS APIs (DynamoDB, S3) over TLS with IAM; a VPC would add NAT or endpoints and cold-start cost for no reachable private resource.
  #checkov:skip=CKV_AWS_272: Code signing needs an AWS Signer profile and a signed build pipeline; the zip is built from this repository by CI and deployed by the same Terraform.
  #checkov:skip=CKV_AWS_116: Invoked synchronously by API Gateway only: the caller gets the error; a function DLQ only applies to asynchronous invokes.
  function_name    = local.function_name
  description      = "imagecore HTTP API behind API Gateway"
  role             = aws_iam_role.api.arn
  handler          = "entrypoints.lambda_api.handler"
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

  depends_on = [aws_iam_role_policy.api, aws_cloudwatch_log_group.function]
}

# --- the HTTP API ----------------------------------------------------------------------------

resource "aws_apigatewayv2_api" "http" {
  name          = "${var.name_prefix}-http-api"
  description   = "imagecore: upload, list, read, download, update and delete images"
  protocol_type = "HTTP"
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.http.id
  name             = "${var.name_prefix}-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_integration" "api" {
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_method     = "POST"
  integration_uri        = aws_lambda_function.api.invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = var.integration_timeout_milliseconds
}

resource "aws_apigatewayv2_route" "protected" {
  for_each = local.protected_routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.api.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.jwt.id
}

resource "aws_apigatewayv2_route" "public" {
  #checkov:skip=CKV_AWS_309: Public on purpose: GET /health, the OpenAPI document and its docs page, and $default (wrong method or path, answered 404/405 by the app). The app trusts only the authorizer's claims, so nothing on these routes reads or changes an image.
  for_each = local.public_routes

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.value
  target             = "integrations/${aws_apigatewayv2_integration.api.id}"
  authorization_type = "NONE"
}

resource "aws_cloudwatch_log_group" "access" {
  #checkov:skip=CKV_AWS_158: CloudWatch Logs encrypts log data at rest by default; a customer managed key needs a key policy for logs.<region>.amazonaws.com and is left to deployments that require one.
  name              = "/aws/apigateway/${var.name_prefix}-http-api"
  retention_in_days = var.log_retention_days
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.throttling_burst_limit
    throttling_rate_limit  = var.throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    format = jsonencode({
      requestId          = "$context.requestId"
      requestTime        = "$context.requestTime"
      sourceIp           = "$context.identity.sourceIp"
      httpMethod         = "$context.httpMethod"
      path               = "$context.path"
      routeKey           = "$context.routeKey"
      status             = "$context.status"
      protocol           = "$context.protocol"
      responseLength     = "$context.responseLength"
      integrationLatency = "$context.integrationLatency"
      integrationError   = "$context.integrationErrorMessage"
      authorizerError    = "$context.authorizer.error"
      userId             = "$context.authorizer.claims.sub"
    })
  }
}

resource "aws_lambda_permission" "api_gateway" {
  statement_id  = "AllowApiGatewayInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.api.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}
