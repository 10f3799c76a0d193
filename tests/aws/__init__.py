"""AWS: the API and worker Lambda handlers with API Gateway, SQS and S3 events, the Lambda
package, and the Terraform configuration, applied with tflocal, all on moto."""
