"""Personal data never reaches the public read model.

Keys that carry an identity-document number are dropped whole; PRC resident
ID numbers and mobile phone numbers that appear inside any text are masked.
Names (the legal representative's included) stay: they are public by law.
"""

from __future__ import annotations

import re
from typing import Any

# 6-digit division, birth date 19xx/20xx, 3-digit sequence, check digit or X.
_ID_NUMBER = re.compile(
    r"(?<![0-9A-Za-z])"
    r"(\d{3})(\d{3}(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{2})(\d[\dXx])"
    r"(?![0-9A-Za-z])"
)
# Mainland mobile numbers, optionally with +86 and separators: 138 1234 5678.
_MOBILE = re.compile(r"(?<!\d)((?:\+?86[- ]?)?1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)")


def _is_id_number_key(key: str) -> bool:
    lowered = key.lower()
    return lowered == "id_number" or lowered.endswith("_id_number")


def mask_text(text: str) -> str:
    """Mask ID numbers (keep the first 3 and last 2) and mobiles (keep 3 and 4)."""
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return _MOBILE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


def mask_personal_data(value: Any) -> Any:
    """A copy of a record's data with personal data removed or masked."""
    if isinstance(value, dict):
        return {
            key: mask_personal_data(item)
            for key, item in value.items()
            if not _is_id_number_key(str(key))
        }
    if isinstance(value, list):
        return [mask_personal_data(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
