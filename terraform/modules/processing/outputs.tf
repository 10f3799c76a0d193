output "function_names" {
  description = "Names of the worker and reconcile functions."
  value       = { for name, function in module.function : name => function.function_name }
}

output "role_arns" {
  description = "Execution role ARN of each function."
  value       = { for name, function in module.function : name => function.role_arn }
}
