"""What text no record or document may hold, found wherever it sits in a JSON value."""

from __future__ import annotations

from ecips_common.text import storable_text, text_fault, text_faults_in


def test_control_characters_and_lone_surrogates_are_faults_but_layout_is_not() -> None:
    assert text_fault("重庆\t渝中\n解放碑\r") is None
    assert text_fault("说明\x00")[0] == "control_character"  # type: ignore[index]
    assert text_fault("说明\x85")[0] == "control_character"  # type: ignore[index]
    assert text_fault("说明\ud800")[0] == "unpaired_surrogate"  # type: ignore[index]
    assert text_fault("😀 emoji and 𠀀 beyond the BMP") is None


def test_faults_are_named_by_their_path() -> None:
    value = {
        "note": "好",
        "changes": {"upsert": [{"title": "ok"}, {"title": "坏\x00", "tags": ["a", "\ud800"]}]},
        "bad\x01key": 1,
    }
    found = [(e.field, e.code) for e in text_faults_in(value)]
    assert found == [
        ("changes.upsert.1.title", "control_character"),
        ("changes.upsert.1.tags.1", "unpaired_surrogate"),
        ("bad\x01key", "control_character"),
    ]
    assert text_faults_in("\x00") and text_faults_in("\x00")[0].field == "body"
    assert text_faults_in({"fine": ["text", 1, None, 2.5]}) == []


def test_storable_text_shows_what_cannot_be_stored_as_replacement_characters() -> None:
    assert storable_text("a\x00b\ud800c") == "a\ufffdb\ufffdc"
