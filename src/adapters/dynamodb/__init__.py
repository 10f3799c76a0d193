"""Image metadata in one DynamoDB table, where every list is a Query, never a Scan.

The table's keys and indexes are written down once, in terraform/modules/metadata/main.tf.

Items:

- the image: ``pk = IMG#<id>``, ``sk = META``, with the image's fields as attributes (numbers
  come back as ``Decimal`` and are turned back into ints here; metadata is kept as JSON text, so
  that ``1.0`` stays a float and any float fits, whatever DynamoDB's number range);
- one edge per tag of an active image: ``pk = IMG#<id>``, ``sk = TAG#<tag>``.

Both carry ``position = <created_at>#<id>``, the order of every list, and, while the image is
active, the timelines it is on: ``owner_timeline`` (its owner's images of one visibility, for
the image item; the same for one tag, for an edge) and, when public, ``public_timeline`` (all
public images; all public images with one tag). A list reads one or two timelines from the two
indexes in position order (the caller's private images and the public ones never overlap),
merges them, and takes the images themselves with a strongly consistent BatchGetItem, checking
each against the query: an index entry a moment stale can never show what the image no longer
allows.

A content claim (``Image.claims_content``) held by an active image is one more item, on no
index: ``pk = CLAIM#<user>#<sha256>``, ``sk = CLAIM``, naming the holder in ``image_id``. It is
written, on the condition that it does not exist yet, in the transaction that makes the image
hold the claim, and deleted in the one that makes it stop (its tombstone): of any number of
uploads that declared the same bytes, one commits.
"""

from adapters.dynamodb.items import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX, items_of
from adapters.dynamodb.repository import DynamoDbImageRepository

__all__ = ["CONTENT_INDEX", "OWNER_INDEX", "PUBLIC_INDEX", "DynamoDbImageRepository", "items_of"]
