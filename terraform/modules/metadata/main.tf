# Image metadata: one DynamoDB table. This block is the single written-down definition of the
# table's keys and indexes: the adapter's tests and `imagecore aws-setup` create the table from it
# (parsed with python-hcl2), so the code and the infrastructure cannot drift apart.
#
# Items (see src/adapters/dynamodb/):
#   image     pk = IMG#<id>  sk = META       the image's fields
#   edges     pk = IMG#<id>  sk = TAG#<tag> | KIND# | TITLE#1..3   one per tag, its content type
#             and the first 1-3 characters of its title, of an active image
#   claim     pk = CLAIM#<user>#<sha256>  sk = CLAIM   the active image that holds the claim on
#             its owner's copy of those bytes (an upload that declared their hash); on no index
# All carry `position` = <created_at>#<id>, the order of every list, and, while the image is
# active, the timelines it belongs to:
#   owner_timeline   O#<user>#<visibility>   (image)  or  ...#T#<tag> | #K#<type> | #N#<prefix>
#   public_timeline  P<shard>                (image)  or  the same suffixes (edge), public only;
#                    shard = crc32(id) % IMAGECORE_PUBLIC_TIMELINE_SHARDS
# so that every list is a Query on a few timelines, read in position order and merged. An image also
# carries `content_key`, from its owner and the hash of its bytes, so that a user's copy of the
# same bytes is one Query on the `content` index (its keys only: the item is read by them).
resource "aws_dynamodb_table" "images" {
  name         = var.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "owner_timeline"
    type = "S"
  }
  attribute {
    name = "public_timeline"
    type = "S"
  }
  attribute {
    name = "position"
    type = "S"
  }
  attribute {
    name = "content_key"
    type = "S"
  }

  global_secondary_index {
    name               = "owner_timeline"
    hash_key           = "owner_timeline"
    range_key          = "position"
    projection_type    = "INCLUDE"
    non_key_attributes = ["content_type", "title_folded"]
  }

  global_secondary_index {
    name               = "public_timeline"
    hash_key           = "public_timeline"
    range_key          = "position"
    projection_type    = "INCLUDE"
    non_key_attributes = ["content_type", "title_folded"]
  }

  global_secondary_index {
    name            = "content"
    hash_key        = "content_key"
    range_key       = "position"
    projection_type = "KEYS_ONLY"
  }

  point_in_time_recovery {
    enabled = var.point_in_time_recovery
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  # Items that only matter until a moment (an upload slot that was never used, a tombstone of a
  # finished delete) carry that moment in expires_at, in epoch seconds: DynamoDB removes them
  # itself, usually within a few days of it, instead of reconcile Scanning the table for them.
  # Until DynamoDB gets to it an expired item can still be read: readers check expires_at too.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  deletion_protection_enabled = var.deletion_protection

  tags = var.tags
}
