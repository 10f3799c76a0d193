output "api_id" {
  description = "ID of the HTTP API."
  value       = aws_apigatewayv2_api.http.id
}

output "api_url" {
  description = "Invoke URL of the API's $default stage."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "execution_arn" {
  description = "Execution ARN of the HTTP API."
  value       = aws_apigatewayv2_api.http.execution_arn
}

output "function_name" {
  description = "Name of the API function."
  value       = module.function.function_name
}

output "role_arn" {
  description = "Execution role ARN of the API function."
  value       = module.function.role_arn
}
