variable "name_prefix" {
  description = "Prefix of every name: <prefix>-images (origin access control, key group, cache policy), <prefix>-images-... (public keys)."
  type        = string
}

variable "bucket_regional_domain_name" {
  description = "The images bucket's regional domain name (<bucket>.s3.<region>.amazonaws.com): the origin."
  type        = string
}

variable "public_key" {
  description = "PEM of the RSA-2048 public key (`imagecore cdn-key` prints it) whose private key signs the links."
  type        = string

  validation {
    condition     = startswith(trimspace(var.public_key), "-----BEGIN PUBLIC KEY-----") && endswith(trimspace(var.public_key), "-----END PUBLIC KEY-----")
    error_message = "public_key must be a PEM public key (-----BEGIN PUBLIC KEY----- ...), as `imagecore cdn-key` prints it."
  }
}

variable "price_class" {
  description = "CloudFront price class: which edge locations serve the images (PriceClass_100, PriceClass_200 or PriceClass_All)."
  type        = string
  default     = "PriceClass_100"
}

variable "domain_names" {
  description = "Your own host names for the images (CNAMEs of the distribution); [] serves them at the distribution's *.cloudfront.net name only."
  type        = list(string)
  default     = []
}

variable "certificate_arn" {
  description = "ACM certificate (in us-east-1) for domain_names; null uses CloudFront's own certificate."
  type        = string
  default     = null
}
