# The public HTTP API: API Gateway (HTTP API, payload format 2.0) in front of one Lambda function
# that runs the whole app (src/entrypoints). The JWT authorizer verifies bearer tokens; the app
# reads the user from the authorizer's claims only, never from a header it could be sent.

locals {
  function_name = "${var.name_prefix}-api"

  # Every route that reads or changes images needs a valid token.
  protected_routes = toset([
    "POST /images",
    "GET /images",
    "GET /images/{image_id}",
    "PATCH /images/{image_id}",
    "DELETE /images/{image_id}",
    "GET /images/{image_id}/download",
    "GET /images/{image_id}/thumbnail",
    "GET /images/{image_id}/renditions/{name}",
    "POST /uploads",
    "POST /upload-sessions",
    "GET /upload-sessions/{upload_id}",
    "DELETE /upload-sessions/{upload_id}",
    "POST /upload-sessions/{upload_id}/part-urls",
    "POST /upload-sessions/{upload_id}/complete",
  ])

  # Open by design: health, the API's own documentation and its icon, and $default, so that a
  # wrong method or path reaches the app and gets its 404/405 in the service's error format (the
  # app answers nothing else without the authorizer's claims).
  public_routes = toset([
    "GET /health",
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/{proxy+}",
    "GET /favicon.ico",
    "$default",
  ])
}

# --- the function ----------------------------------------------------------------------------

# What the adapters call: DescribeTable (start-up check), GetItem, BatchGetItem, Query (on the
# indexes), TransactWriteItems (PutItem, UpdateItem, DeleteItem, ConditionCheckItem per item);
# no Scan: every list is a Query. S3 under images/ (src/imagecore/service.py): PutObject
# (multipart included) and AbortMultipartUpload for POST /images, GetObject (HeadObject, the
# presigned GETs of downloads and thumbnails), DeleteObject(s) for DELETE. Under uploads/:
# PutObject, as a presigned POST (POST /uploads) and a presigned UploadPart are authorised as the
# role that signed them, and CreateMultipartUpload and CompleteMultipartUpload are PutObject too
# (POST /upload-sessions and its complete); ListMultipartUploadParts (GET /upload-sessions/{id},
# complete), AbortMultipartUpload and DeleteObject (DELETE /upload-sessions/{id}, which also
# removes what a session left). The API never reads a direct upload (the worker does). SQS:
# SendMessage of thumbnail jobs to the job queue (IMAGECORE_QUEUE_URL).
data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "JobQueueSend"
    actions   = ["sqs:SendMessage"]
    resources = [var.queue_arn]
  }
}

module "function" {
  source = "../function"

  name                 = local.function_name
  description          = "imagecore HTTP API behind API Gateway"
  handler              = "entrypoints.aws_lambda.api.handler"
  lambda_zip           = var.lambda_zip
  runtime              = var.runtime
  architecture         = var.architecture
  timeout_seconds      = var.timeout_seconds
  memory_mb            = var.memory_mb
  reserved_concurrency = var.reserved_concurrency
  environment          = var.environment
  kms_key_arn          = var.kms_key_arn
  tracing_mode         = var.tracing_mode
  log_retention_days   = var.log_retention_days
  json_logs            = var.json_logs
  log_level            = var.log_level

  table_arn  = var.table_arn
  index_arns = var.index_arns
  table_actions = [
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
  ]
  bucket_arn = var.bucket_arn
  object_actions = {
    "images/"  = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    "uploads/" = ["s3:PutObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload", "s3:DeleteObject"]
  }
  extra_policy_json = data.aws_iam_policy_document.queue.json

  secret_parameter_arn      = var.secret_parameter_arn
  signing_key_parameter_arn = var.signing_key_parameter_arn
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
  integration_uri        = module.function.invoke_arn
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
  #checkov:skip=CKV_AWS_309: Public on purpose: GET /health, the OpenAPI document, its docs page and their icon, and $default (wrong method or path, answered 404/405 by the app). The app trusts only the authorizer's claims, so nothing on these routes reads or changes an image.
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
  function_name = module.function.function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*"
}
