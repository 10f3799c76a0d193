output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.function.function_name
}

output "arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.function.arn
}

output "invoke_arn" {
  description = "ARN API Gateway invokes the function by."
  value       = aws_lambda_function.function.invoke_arn
}

output "role_arn" {
  description = "ARN of the function's execution role."
  value       = aws_iam_role.function.arn
}
