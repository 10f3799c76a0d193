"""Text fields through a real server: kept in the documented Unicode forms, tags one tag in any
case or compatibility spelling, and text that would show something other than what is stored
refused with a 400 that names the field. (Every rule, case by case: tests/domain.)"""

from __future__ import annotations

import json

import pytest

from tests.support.api_assertions import assert_error
from tests.support.api_client import Api, path

FULLWIDTH_BEACH = "\uff42\uff45\uff41\uff43\uff48"
RIGHT_TO_LEFT_OVERRIDE = "\u202e"
ZERO_WIDTH_SPACE = "\u200b"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
"""An emoji family: three emoji joined by ZWJs, which real text needs."""


def test_tags_and_titles_are_found_in_any_case_or_compatibility_spelling(
    api: Api, alice: str
) -> None:
    spellings = [FULLWIDTH_BEACH, "BEACH", "beach"]
    images = [
        api.uploaded(alice, tags=spelling, title=f"{FULLWIDTH_BEACH.upper()} {n}")
        for n, spelling in enumerate(spellings)
    ]
    assert [image["tags"] for image in images] == [["beach"]] * 3
    assert images[0]["title"] == f"{FULLWIDTH_BEACH.upper()} 0", "titles are kept as written"
    expected = sorted(image["image_id"] for image in images)

    for spelling in spellings:
        listed = api.list_all(alice, user_id=alice, tags=spelling)
        assert sorted(image["image_id"] for image in listed) == expected
        listed = api.list_all(alice, user_id=alice, title=spelling[:3])
        assert sorted(image["image_id"] for image in listed) == expected


def test_text_is_kept_in_nfc_with_the_joiners_real_text_needs(api: Api, alice: str) -> None:
    image = api.uploaded(
        alice,
        filename="cafe\u0301.png",
        title=f"Cafe\u0301 {FAMILY}",
        description="na\u0308ive",
        tags=json.dumps([FAMILY]),
        metadata=json.dumps({"cafe\u0301": "cre\u0300me"}),
    )

    assert image["filename"] == "caf\u00e9.png"
    assert image["title"] == f"Caf\u00e9 {FAMILY}"
    assert image["description"] == "n\u00e4ive"
    assert image["tags"] == [FAMILY]
    assert image["metadata"] == {"caf\u00e9": "cr\u00e8me"}


@pytest.mark.parametrize("hidden", [RIGHT_TO_LEFT_OVERRIDE, ZERO_WIDTH_SPACE])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "gnp.{}exe"),
        ("description", "a{}b"),
        ("tags", "beach,sun{}set"),
        ("metadata", '{{"camera": "X{}100"}}'),
    ],
)
def test_an_upload_with_a_bidi_control_or_an_invisible_character_is_400_naming_the_field(
    api: Api, alice: str, field: str, value: str, hidden: str
) -> None:
    response = api.upload(alice, **{field: value.format(hidden)})

    body = assert_error(response, 400, "InvalidInput")
    assert body["message"].startswith(field)
    assert f"U+{ord(hidden):04X}" in body["message"]
    assert api.list_all(alice, user_id=alice) == []


@pytest.mark.parametrize(
    "change",
    [
        {"title": f"gnp.{RIGHT_TO_LEFT_OVERRIDE}exe"},
        {"tags": ["beach", f"sun{ZERO_WIDTH_SPACE}set"]},
        {"metadata": {f"cam{ZERO_WIDTH_SPACE}era": "X100"}},
    ],
)
def test_an_update_with_a_refused_character_is_400_and_changes_nothing(
    api: Api, alice: str, change: dict[str, object]
) -> None:
    image = api.uploaded(alice, title="Beach")

    response = api.client.patch(path(image), headers=api.auth(alice), json=change)

    body = assert_error(response, 400, "InvalidInput")
    assert body["message"].startswith(next(iter(change)))
    assert api.client.get(path(image), headers=api.auth(alice)).json() == image


def test_a_direct_upload_slot_with_a_refused_character_is_400(api: Api, alice: str) -> None:
    response = api.client.post(
        "/uploads",
        headers=api.auth(alice),
        json={"content_type": "image/png", "title": f"gnp.{RIGHT_TO_LEFT_OVERRIDE}exe"},
    )

    body = assert_error(response, 400, "InvalidInput")
    assert body["message"].startswith("title")


@pytest.mark.parametrize("field", ["tags", "title"])
def test_a_list_filter_with_a_refused_character_is_400_naming_it(
    api: Api, alice: str, field: str
) -> None:
    response = api.list(alice, **{field: f"sun{ZERO_WIDTH_SPACE}set"})

    body = assert_error(response, 400, "InvalidInput")
    assert body["message"].startswith(field)
