"""Enterprise identifiers: the Unified Social Credit Code and old registration numbers.

Unified Social Credit Code (USCC, 统一社会信用代码, GB 32100-2015)
    18 characters from :data:`USCC_ALPHABET` (31 characters; a character's value is
    its index). Position 1 is the registration-authority code, position 2 the
    organisation-type code, positions 3-8 the administrative division code (six
    digits), positions 9-17 the organisation code (GB 11714: eight body characters
    and one check character) and position 18 the overall check character.

    Overall check: weights ``3**i mod 31`` (1, 3, 9, 27, 19, ...) over positions 1-17;
    the check value is ``(31 - sum mod 31) mod 31`` and the check character is
    ``USCC_ALPHABET[value]``.

    Organisation-code check: body characters valued digit -> 0-9, A..Z -> 10..35,
    weights 3, 7, 9, 10, 5, 8, 4, 2; ``c = 11 - sum mod 11``; 10 -> ``X``,
    11 -> ``0``, otherwise the digit.

Business registration number (工商注册号, pre-2015)
    15 digits: 14 digits and one check digit computed with ISO 7064 MOD 11,10.

Validation checks, in order: length, characters, the organisation-code check
(position 17 against positions 9-16), then the overall check character. Every
failure raises :class:`IdentifierError` carrying a stable ``code``.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "USCC_ALPHABET",
    "IdentifierError",
    "is_valid_registration_number",
    "is_valid_uscc",
    "make_registration_number",
    "make_uscc",
    "normalize_uscc",
    "org_code_check_character",
    "registration_number_check_digit",
    "uscc_check_character",
    "uscc_division",
    "validate_registration_number",
    "validate_uscc",
]

USCC_ALPHABET: Final[str] = "0123456789ABCDEFGHJKLMNPQRTUWXY"
"""The 31 characters allowed in a USCC (no I, O, S, V, Z); a character's value is its index."""

USCC_LENGTH: Final = 18
REGISTRATION_NUMBER_LENGTH: Final = 15

_DIGITS: Final = "0123456789"
_USCC_VALUES: Final[dict[str, int]] = {char: index for index, char in enumerate(USCC_ALPHABET)}
# 3**i mod 31 for i = 0..16.
_USCC_WEIGHTS: Final[tuple[int, ...]] = (
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
)  # fmt: skip

_ORG_CODE_CHARS: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_CODE_VALUES: Final[dict[str, int]] = {
    char: index for index, char in enumerate(_ORG_CODE_CHARS)
}
_ORG_CODE_WEIGHTS: Final[tuple[int, ...]] = (3, 7, 9, 10, 5, 8, 4, 2)

# Full-width ASCII variants (U+FF01..U+FF5E) and the ideographic space (U+3000).
_FULL_WIDTH_TO_ASCII: Final[dict[int, int]] = {
    0xFF01 + offset: 0x21 + offset for offset in range(0x5E)
} | {0x3000: 0x20}
_ASCII_LOWER_TO_UPPER: Final[dict[int, int]] = {
    ord(lower): ord(upper)
    for lower, upper in zip("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", strict=True)
}


class IdentifierError(ValueError):
    """An identifier failed validation.

    ``code`` is a stable snake_case machine code (``invalid_length``,
    ``invalid_character``, ``invalid_org_code_check``, ``invalid_check_character``,
    ``invalid_check_digit``); ``message`` is a human-readable English explanation.
    """

    code: str
    message: str

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"IdentifierError(code={self.code!r}, message={self.message!r})"


def _normalize(value: str) -> str:
    """Full-width to ASCII, strip surrounding whitespace, uppercase ASCII letters only.

    Only ASCII letters are uppercased so that characters such as 'ı' or 'ſ' are not
    silently turned into 'I' or 'S'; they stay and are reported as invalid.
    """
    return value.translate(_FULL_WIDTH_TO_ASCII).strip().translate(_ASCII_LOWER_TO_UPPER)


def normalize_uscc(value: str) -> str:
    """Normalise a USCC as typed by a person; does not validate.

    Converts full-width characters (``'９'``, ``'Ａ'``, the ideographic space) to
    ASCII, strips surrounding whitespace and uppercases ASCII letters.
    """
    return _normalize(value)


def _check_length(value: str, expected: int, what: str) -> None:
    if len(value) != expected:
        raise IdentifierError(
            "invalid_length",
            f"{what} must be {expected} characters long, got {len(value)}",
        )


def _check_characters(value: str, allowed: str, what: str, *, start: int = 1) -> None:
    for offset, char in enumerate(value):
        if char not in allowed:
            raise IdentifierError(
                "invalid_character",
                f"{what}: character {char!r} at position {start + offset} is not allowed",
            )


def _check_uscc_characters(value: str, *, start: int = 1) -> None:
    """Check characters of (part of) a USCC whose first character is at ``start``."""
    for offset, char in enumerate(value):
        position = start + offset
        if 3 <= position <= 8:
            if char not in _DIGITS:
                raise IdentifierError(
                    "invalid_character",
                    f"character {char!r} at position {position} is not allowed: "
                    "positions 3-8 (administrative division code) must be digits",
                )
        elif char not in _USCC_VALUES:
            raise IdentifierError(
                "invalid_character",
                f"character {char!r} at position {position} is not allowed in a "
                "unified social credit code",
            )


def org_code_check_character(body8: str) -> str:
    """Return the GB 11714 check character for an 8-character organisation-code body.

    The body may contain digits and uppercase ASCII letters.
    """
    _check_length(body8, 8, "organisation code body")
    _check_characters(body8, _ORG_CODE_CHARS, "organisation code body")
    total = sum(
        _ORG_CODE_VALUES[char] * weight
        for char, weight in zip(body8, _ORG_CODE_WEIGHTS, strict=True)
    )
    check = 11 - total % 11
    if check == 10:
        return "X"
    if check == 11:
        return "0"
    return str(check)


def uscc_check_character(first17: str) -> str:
    """Return the 18th (check) character for the first 17 characters of a USCC.

    Only the alphabet is checked here (not the division digits or the
    organisation-code check).
    """
    _check_length(first17, USCC_LENGTH - 1, "first 17 characters of a USCC")
    _check_characters(first17, USCC_ALPHABET, "first 17 characters of a USCC")
    total = sum(
        _USCC_VALUES[char] * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True)
    )
    return USCC_ALPHABET[(31 - total % 31) % 31]


def validate_uscc(value: str) -> str:
    """Normalise and validate a USCC; return the normalised code.

    Raises :class:`IdentifierError` with code ``invalid_length``,
    ``invalid_character``, ``invalid_org_code_check`` or ``invalid_check_character``
    (checked in that order).
    """
    code = normalize_uscc(value)
    _check_length(code, USCC_LENGTH, "unified social credit code")
    _check_uscc_characters(code)
    expected_org_check = org_code_check_character(code[8:16])
    if code[16] != expected_org_check:
        raise IdentifierError(
            "invalid_org_code_check",
            f"organisation code check character (position 17) should be "
            f"{expected_org_check!r}, got {code[16]!r}",
        )
    expected_check = uscc_check_character(code[:17])
    if code[17] != expected_check:
        raise IdentifierError(
            "invalid_check_character",
            f"check character should be {expected_check!r}, got {code[17]!r}",
        )
    return code


def is_valid_uscc(value: str) -> bool:
    """Return whether ``value`` (after normalisation) is a valid USCC."""
    try:
        validate_uscc(value)
    except IdentifierError:
        return False
    return True


def make_uscc(
    *,
    authority: str = "9",
    org_type: str = "1",
    division: str = "500000",
    org_body: str,
) -> str:
    """Build a valid USCC, computing the organisation-code and overall check characters.

    ``authority`` and ``org_type`` are single USCC characters, ``division`` is six
    digits and ``org_body`` is the eight-character organisation-code body, all in the
    USCC alphabet. Parts are used as given (not normalised). Raises
    :class:`IdentifierError` (a :class:`ValueError`) on a bad part.
    """
    _check_length(authority, 1, "registration authority code")
    _check_length(org_type, 1, "organisation type code")
    _check_length(division, 6, "administrative division code")
    _check_length(org_body, 8, "organisation code body")
    first16 = authority + org_type + division + org_body
    _check_uscc_characters(first16)
    first17 = first16 + org_code_check_character(org_body)
    return first17 + uscc_check_character(first17)


def uscc_division(uscc: str) -> str:
    """Return the administrative division code (positions 3-8) of a valid USCC.

    The code is normalised and validated first (raises :class:`IdentifierError`).
    """
    return validate_uscc(uscc)[2:8]


def _mod11_10_check_digit(digits: str) -> str:
    """ISO 7064 MOD 11,10 check digit for a string of ASCII digits."""
    p = 10
    for char in digits:
        s = (p + int(char)) % 10
        if s == 0:
            s = 10
        p = (s * 2) % 11
    # The check digit c satisfies (p + c) mod 10 == 1.
    return str((11 - p) % 10)


def registration_number_check_digit(first14: str) -> str:
    """Return the ISO 7064 MOD 11,10 check digit for the first 14 digits."""
    _check_length(
        first14, REGISTRATION_NUMBER_LENGTH - 1, "first 14 digits of a registration number"
    )
    _check_characters(first14, _DIGITS, "first 14 digits of a registration number")
    return _mod11_10_check_digit(first14)


def make_registration_number(first14: str) -> str:
    """Append the check digit to 14 digits, giving a valid 15-digit registration number."""
    return first14 + registration_number_check_digit(first14)


def validate_registration_number(value: str) -> str:
    """Normalise and validate a 15-digit business registration number; return it.

    Full-width digits are converted and surrounding whitespace stripped. Raises
    :class:`IdentifierError` with code ``invalid_length``, ``invalid_character`` or
    ``invalid_check_digit`` (checked in that order).
    """
    number = _normalize(value)
    _check_length(number, REGISTRATION_NUMBER_LENGTH, "registration number")
    _check_characters(number, _DIGITS, "registration number")
    expected = _mod11_10_check_digit(number[:14])
    if number[14] != expected:
        raise IdentifierError(
            "invalid_check_digit",
            f"check digit should be {expected!r}, got {number[14]!r}",
        )
    return number


def is_valid_registration_number(value: str) -> bool:
    """Return whether ``value`` (after normalisation) is a valid registration number."""
    try:
        validate_registration_number(value)
    except IdentifierError:
        return False
    return True
