"""Image metadata in one DynamoDB table, where every list is a Query, never a Scan.

The table's keys and indexes are written down once, in terraform/modules/metadata/main.tf.

Items:

- the image: ``pk = IMG#<id>``, ``sk = META``, with the image's fields as attributes (numbers
  come back as ``Decimal`` and are turned back into ints here; metadata is kept as JSON text, so
  that ``1.0`` stays a float and any float fits, whatever DynamoDB's number range);
- edges of an active image, one per facet: ``sk = TAG#<tag>`` for each tag, ``KIND#`` for its
  content type, ``TITLE#1`` to ``TITLE#3`` for the first one to three characters of its folded
  title.

All carry ``position = <created_at>#<id>``, the order of every list, and, while the image is
active, the timelines it is on: ``owner_timeline`` (its owner's images of one visibility, for
the image item; the same narrowed to the facet, ``...#T#<tag>``, ``#K#<type>``, ``#N#<prefix>``,
for an edge) and, when public, ``public_timeline`` (``P<shard>`` and its facets: the public
images are spread over shards by their id, so no partition takes every public upload). A list
reads the timelines of one facet (its first tag, else its title's start, else its content type)
in position order: the caller's private ones and the public ones, of one user or of every
shard, merged; it applies what the facet leaves out as a filter on the entries or the images,
and reads at most ``read_budget`` entries per request. It takes the images themselves with a
strongly consistent BatchGetItem, checking each against the query: an index entry a moment
stale can never show what the image no longer allows. Records that may be forgotten carry
``expires_at`` for the table's time to live.

A content claim (``Image.claims_content``) held by an active image is one more item, on no
index: ``pk = CLAIM#<user>#<sha256>``, ``sk = CLAIM``, naming the holder in ``image_id``. It is
written, on the condition that it does not exist yet, in the transaction that makes the image
hold the claim, and deleted in the one that makes it stop (its tombstone): of any number of
uploads that declared the same bytes, one commits.
"""

from adapters.dynamodb.items import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX, items_of
from adapters.dynamodb.repository import DynamoDbImageRepository

__all__ = ["CONTENT_INDEX", "OWNER_INDEX", "PUBLIC_INDEX", "DynamoDbImageRepository", "items_of"]
