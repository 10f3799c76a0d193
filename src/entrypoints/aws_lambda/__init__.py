"""The AWS Lambda handlers: the HTTP API behind API Gateway, the queue worker and reconcile."""
