"""Text no record or document may hold: control characters, which are never
part of one, and what no UTF-8 text can hold (NUL in PostgreSQL, half of a
UTF-16 surrogate pair)."""

from __future__ import annotations

import re
from typing import Any

from ecips_common.problems import FieldError

# C0 controls other than tab, newline and carriage return, DEL, and the C1 block.
# PostgreSQL text cannot hold NUL at all; the others are never part of a record.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# JSON may escape half of a UTF-16 surrogate pair ("\ud800") on its own: not a
# character, and no UTF-8 text (so no database, no event) can hold it.
UNPAIRED_SURROGATES = re.compile(r"[\ud800-\udfff]")


def text_fault(value: str) -> tuple[str, str] | None:
    """(code, message) when the text holds characters a record may not contain."""
    if CONTROL_CHARACTERS.search(value):
        return "control_character", "the text contains control characters"
    if UNPAIRED_SURROGATES.search(value):
        return (
            "unpaired_surrogate",
            "the text contains half of a UTF-16 surrogate pair (such as \\ud800), "
            "which is not a character",
        )
    return None


def storable_text(value: str) -> str:
    """The text with what PostgreSQL cannot store (NUL, unpaired surrogates) shown
    as U+FFFD: for echoing rejected input back, never for accepted records."""
    return UNPAIRED_SURROGATES.sub("\ufffd", value.replace("\x00", "\ufffd"))


def text_faults_in(value: Any, path: str = "") -> list[FieldError]:
    """Every string (and key) in a JSON-like value that :func:`text_fault`
    refuses, named by its dotted path (``changes.upsert.0.title``)."""
    found: list[FieldError] = []
    if isinstance(value, str):
        fault = text_fault(value)
        if fault is not None:
            found.append(FieldError(field=path or "body", code=fault[0], message=fault[1]))
    elif isinstance(value, dict):
        for key, item in value.items():
            name = storable_text(str(key))
            inner = f"{path}.{name}" if path else name
            if isinstance(key, str) and (fault := text_fault(key)) is not None:
                found.append(FieldError(field=inner, code=fault[0], message=f"key: {fault[1]}"))
            found += text_faults_in(item, inner)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found += text_faults_in(item, f"{path}.{index}" if path else str(index))
    return found
