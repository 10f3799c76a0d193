# The job queue and its dead-letter queue, in a module of their own because everything else
# meets here: S3 announces direct uploads to it (modules/storage), the API and the worker send
# thumbnail jobs to it (IMAGECORE_QUEUE_URL, in every function's environment), and the worker
# consumes it (modules/processing). Kept inside processing, the queue's URL would have to go
# from that module's outputs into the one environment map and back into its own functions.

data "aws_caller_identity" "current" {}

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
  visibility_timeout_seconds = var.visibility_timeout_seconds

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

  lifecycle {
    # The worker marks a thumbnail failed itself on the receive that reaches thumbnail_attempts.
    # A message dead-lettered before that never gets there, and its image stays "pending" for
    # ever. (A precondition, not a variable validation: that would need Terraform 1.9.)
    precondition {
      condition     = var.max_receive_count > var.thumbnail_attempts
      error_message = "max_receive_count (${var.max_receive_count}) must be greater than thumbnail_attempts (${var.thumbnail_attempts}): the worker must see a thumbnail job's last attempt before SQS moves it to the dead-letter queue."
    }
  }
}

data "aws_iam_policy_document" "jobs" {
  # The functions send and receive under their own roles' policies (same account): the queue
  # policy only has to let S3 in, and keep plain http out.
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
