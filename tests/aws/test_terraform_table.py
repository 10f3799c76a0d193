"""The table of the Terraform module (terraform/modules/metadata): exactly the keys and indexes the
DynamoDB adapter queries, with what its filters read projected into the indexes."""

from __future__ import annotations

from adapters.aws_resources import table_definition
from adapters.dynamodb import CONTENT_INDEX, OWNER_INDEX, PUBLIC_INDEX
from tests.support.fake_aws import METADATA_MODULE


def test_the_terraform_table_has_exactly_the_keys_and_indexes_the_adapter_queries() -> None:
    definition = table_definition(METADATA_MODULE)
    keys = {key["AttributeName"]: key["KeyType"] for key in definition["KeySchema"]}
    assert keys == {"pk": "HASH", "sk": "RANGE"}
    indexes = {index["IndexName"]: index for index in definition["GlobalSecondaryIndexes"]}
    assert set(indexes) == {OWNER_INDEX, PUBLIC_INDEX, CONTENT_INDEX}
    content = indexes.pop(CONTENT_INDEX)
    # Duplicate detection reads the key of a match, then the image itself.
    assert [key["AttributeName"] for key in content["KeySchema"]] == ["content_key", "position"]
    assert content["Projection"]["ProjectionType"] == "KEYS_ONLY"
    for name, index in indexes.items():
        assert [key["AttributeName"] for key in index["KeySchema"]] == [name, "position"]
        # The filters the adapter applies in the index read these without touching the table.
        assert set(index["Projection"]["NonKeyAttributes"]) >= {"content_type", "title_folded"}
    assert definition["BillingMode"] == "PAY_PER_REQUEST"


def test_the_terraform_table_drops_items_once_their_expires_at_has_passed() -> None:
    # DynamoDB's time to live reads epoch seconds from this attribute: expired upload slots and
    # tombstones go without a Scan. `aws-setup` and the tests' tables get it from here too.
    definition = table_definition(METADATA_MODULE)
    assert definition["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
