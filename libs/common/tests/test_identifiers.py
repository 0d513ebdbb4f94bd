"""Tests for ecips_common.identifiers (USCC and old business registration numbers)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecips_common.identifiers import (
    USCC_ALPHABET,
    IdentifierError,
    is_valid_registration_number,
    is_valid_uscc,
    make_registration_number,
    make_uscc,
    normalize_uscc,
    org_code_check_character,
    registration_number_check_digit,
    uscc_check_character,
    uscc_division,
    validate_registration_number,
    validate_uscc,
)

DIGITS = "0123456789"
# Weights as stated in GB 32100-2015; each is 3**i mod 31.
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def _to_full_width(text: str) -> str:
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if "!" <= c <= "~" else c for c in text)


# ---------------------------------------------------------------------------
# Hand-checked vectors
# ---------------------------------------------------------------------------


def test_known_uscc_91110000600037341l() -> None:
    # Organisation code body "60003734", weights 3,7,9,10,5,8,4,2:
    #   6*3 + 0*7 + 0*9 + 0*10 + 3*5 + 7*8 + 3*4 + 4*2
    #   = 18 + 0 + 0 + 0 + 15 + 56 + 12 + 8 = 109; 109 mod 11 = 10; 11 - 10 = 1 -> '1'.
    assert org_code_check_character("60003734") == "1"
    # USCC check over "911100006000373 41" (values = alphabet index; digits are themselves):
    #   9*1 + 1*3 + 1*9 + 1*27 + 0*19 + 0*26 + 0*16 + 0*17 + 6*20 + 0*29 + 0*25 + 0*13
    #   + 3*8 + 7*24 + 3*10 + 4*30 + 1*28
    #   = 9 + 3 + 9 + 27 + 120 + 24 + 168 + 30 + 120 + 28 = 538
    #   538 mod 31 = 538 - 527 = 11; (31 - 11) mod 31 = 20 -> alphabet[20] = 'L'
    #   (0-9, A=10, B, C, D, E, F, G, H=17, J=18, K=19, L=20).
    assert uscc_check_character("91110000600037341") == "L"
    assert validate_uscc("91110000600037341L") == "91110000600037341L"
    assert is_valid_uscc("91110000600037341L")
    assert uscc_division("91110000600037341L") == "110000"
    assert make_uscc(authority="9", org_type="1", division="110000", org_body="60003734") == (
        "91110000600037341L"
    )


def test_known_uscc_with_letters_91350100m000100y43() -> None:
    # Organisation code body "M000100Y" (GB 11714 values: M=22, Y=34):
    #   22*3 + 0*7 + 0*9 + 0*10 + 1*5 + 0*8 + 0*4 + 34*2 = 66 + 5 + 68 = 139
    #   139 mod 11 = 7; 11 - 7 = 4 -> '4'.
    assert org_code_check_character("M000100Y") == "4"
    # USCC values (USCC alphabet: M=21, Y=30):
    #   9*1 + 1*3 + 3*9 + 5*27 + 0*19 + 1*26 + 0*16 + 0*17 + 21*20 + 0*29 + 0*25 + 0*13
    #   + 1*8 + 0*24 + 0*10 + 30*30 + 4*28
    #   = 9 + 3 + 27 + 135 + 26 + 420 + 8 + 900 + 112 = 1640
    #   1640 mod 31 = 1640 - 1612 = 28; 31 - 28 = 3 -> '3'.
    assert validate_uscc("91350100M000100Y43") == "91350100M000100Y43"
    assert uscc_division("91350100M000100Y43") == "350100"


def test_known_uscc_with_org_check_x() -> None:
    # Body "00000006": 6*2 = 12; 12 mod 11 = 1; 11 - 1 = 10 -> 'X'.
    assert org_code_check_character("00000006") == "X"
    # USCC "9150000000000006X?" (USCC alphabet: X=29):
    #   9*1 + 1*3 + 5*9 + 6*30 + 29*28 = 9 + 3 + 45 + 180 + 812 = 1049
    #   1049 mod 31 = 1049 - 1023 = 26; 31 - 26 = 5 -> '5'.
    assert make_uscc(org_body="00000006") == "9150000000000006X5"
    assert is_valid_uscc("9150000000000006X5")


def test_org_code_check_eleven_maps_to_zero() -> None:
    # Sum 0 -> 0 mod 11 = 0 -> 11 - 0 = 11 -> '0'.
    assert org_code_check_character("00000000") == "0"
    # Letters outside the USCC alphabet are fine in a plain GB 11714 body: I=18, O=24.
    #   18*3 + 24*7 = 54 + 168 = 222; 222 mod 11 = 2; 11 - 2 = 9 -> '9'.
    assert org_code_check_character("IO000000") == "9"


def test_uscc_weights_are_powers_of_three_and_detect_every_substitution() -> None:
    assert tuple(pow(3, i, 31) for i in range(17)) == USCC_WEIGHTS
    # 31 is prime and no weight is 0 mod 31, so weight * delta != 0 (mod 31) for every
    # value change delta in 1..30: any single substitution changes the check value.
    for weight in USCC_WEIGHTS:
        assert all((weight * delta) % 31 != 0 for delta in range(1, 31))


def test_known_registration_number_110108000000016() -> None:
    # ISO 7064 MOD 11,10 over "11010800000001", p starts at 10;
    # each step: s = (p + d) mod 10 (0 -> 10), p = 2s mod 11.
    #   d=1: s=1,  p=2     d=1: s=3,  p=6     d=0: s=6,  p=1
    #   d=1: s=2,  p=4     d=0: s=4,  p=8     d=8: s=6,  p=1
    #   d=0: s=1,  p=2     d=0: s=2,  p=4     d=0: s=4,  p=8
    #   d=0: s=8,  p=5     d=0: s=5,  p=10    d=0: s=10, p=9
    #   d=0: s=9,  p=7     d=1: s=8,  p=5
    #   c = (11 - 5) mod 10 = 6; check: (5 + 6) mod 10 = 1.
    assert registration_number_check_digit("11010800000001") == "6"
    assert make_registration_number("11010800000001") == "110108000000016"
    assert validate_registration_number("110108000000016") == "110108000000016"


def test_known_registration_number_440301100123459() -> None:
    # "44030110012345":
    #   d=4: s=4,  p=8     d=4: s=2,  p=4     d=0: s=4,  p=8
    #   d=3: s=1,  p=2     d=0: s=2,  p=4     d=1: s=5,  p=10
    #   d=1: s=1,  p=2     d=0: s=2,  p=4     d=0: s=4,  p=8
    #   d=1: s=9,  p=7     d=2: s=9,  p=7     d=3: s=10, p=9
    #   d=4: s=3,  p=6     d=5: s=1,  p=2
    #   c = (11 - 2) mod 10 = 9.
    assert registration_number_check_digit("44030110012345") == "9"
    assert is_valid_registration_number("440301100123459")


def test_known_registration_number_with_check_digit_zero() -> None:
    # "10000000000008": d=1: s=1, p=2; then twelve zeros double p mod 11
    #   (s=10 when p=10): 4, 8, 5, 10, 9, 7, 3, 6, 1, 2, 4, 8;
    #   d=8: s=(8+8) mod 10=6, p=12 mod 11=1; c = (11 - 1) mod 10 = 0.
    assert make_registration_number("10000000000008") == "100000000000080"
    assert is_valid_registration_number("100000000000080")


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("91110000600037341l", "91110000600037341L"),
        ("  91110000600037341L\t\n", "91110000600037341L"),
        ("９１１１００００６０００３７３４１Ｌ", "91110000600037341L"),
        ("　９１１１００００６０００３７３４１ｌ　", "91110000600037341L"),  # ideographic spaces
        ("91350100m000100y43", "91350100M000100Y43"),
    ],
)
def test_normalize_and_validate_uscc(raw: str, expected: str) -> None:
    assert normalize_uscc(raw) == expected
    assert validate_uscc(raw) == expected
    assert is_valid_uscc(raw)


def test_normalize_uscc_does_not_validate() -> None:
    assert normalize_uscc(" abc ") == "ABC"
    assert normalize_uscc("") == ""


def test_normalize_uscc_keeps_non_ascii_letters() -> None:
    # 'ı'.upper() == 'I' in Python; we must not manufacture ASCII letters.
    assert normalize_uscc("ı") == "ı"
    with pytest.raises(IdentifierError) as info:
        validate_uscc("91110000600037341ı")
    assert info.value.code == "invalid_character"


def test_registration_number_normalisation() -> None:
    assert validate_registration_number(" １１０１０８０００００００１６ ") == "110108000000016"


@given(st.text(alphabet=USCC_ALPHABET, min_size=0, max_size=20), st.booleans(), st.booleans())
def test_normalize_uscc_roundtrip(text: str, lower: bool, full_width: bool) -> None:
    raw = text.lower() if lower else text
    raw = _to_full_width(raw) if full_width else raw
    assert normalize_uscc(f" {raw}\u3000") == text


# ---------------------------------------------------------------------------
# Error codes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "invalid_length"),
        ("91110000600037341", "invalid_length"),
        ("91110000600037341LL", "invalid_length"),
        ("91110000600037341I", "invalid_character"),  # I is not in the alphabet
        ("9111000060003734-L", "invalid_character"),
        ("91I10000600037341L", "invalid_character"),  # division must be digits
        ("9111A000600037341L", "invalid_character"),
        ("9111000060003734XL", "invalid_org_code_check"),
        ("91110000600037342L", "invalid_org_code_check"),
        ("91110000600037341X", "invalid_check_character"),
        ("91110000600037341M", "invalid_check_character"),
    ],
)
def test_validate_uscc_error_codes(raw: str, code: str) -> None:
    with pytest.raises(IdentifierError) as info:
        validate_uscc(raw)
    assert info.value.code == code
    assert str(info.value) == info.value.message
    assert not is_valid_uscc(raw)


def test_uscc_error_messages() -> None:
    with pytest.raises(IdentifierError) as info:
        validate_uscc("91110000600037341X")
    assert info.value.message == "check character should be 'L', got 'X'"
    with pytest.raises(IdentifierError) as info:
        validate_uscc("91110000600037342L")
    assert "should be '1', got '2'" in info.value.message
    with pytest.raises(IdentifierError) as info:
        validate_uscc("91110000600037341O")
    assert "'O' at position 18" in info.value.message


def test_uscc_check_order_length_before_characters() -> None:
    with pytest.raises(IdentifierError) as info:
        validate_uscc("IIII")
    assert info.value.code == "invalid_length"


def test_uscc_check_order_characters_before_checks() -> None:
    # Bad org-code check and bad overall check, but also a bad character.
    with pytest.raises(IdentifierError) as info:
        validate_uscc("9111000060003734ZZ")
    assert info.value.code == "invalid_character"


def test_uscc_check_order_org_check_before_overall_check() -> None:
    with pytest.raises(IdentifierError) as info:
        validate_uscc("91110000600037340X")
    assert info.value.code == "invalid_org_code_check"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "invalid_length"),
        ("11010800000001", "invalid_length"),
        ("1101080000000160", "invalid_length"),
        ("11010800000001A", "invalid_character"),
        ("1101080000000²6", "invalid_character"),  # str.isdigit() would accept this
        ("110108000000017", "invalid_check_digit"),
        ("110108000000061", "invalid_check_digit"),
    ],
)
def test_validate_registration_number_error_codes(raw: str, code: str) -> None:
    with pytest.raises(IdentifierError) as info:
        validate_registration_number(raw)
    assert info.value.code == code
    assert not is_valid_registration_number(raw)


def test_registration_number_error_message() -> None:
    with pytest.raises(IdentifierError) as info:
        validate_registration_number("110108000000017")
    assert info.value.message == "check digit should be '6', got '7'"


def test_identifier_error_is_value_error() -> None:
    err = IdentifierError("invalid_length", "too short")
    assert isinstance(err, ValueError)
    assert (err.code, err.message, str(err)) == ("invalid_length", "too short", "too short")


# ---------------------------------------------------------------------------
# Builders and helpers rejecting bad input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"org_body": "6000373"},
        {"org_body": "600037345"},
        {"org_body": "6000373I"},  # I is valid GB 11714 but not in the USCC alphabet
        {"org_body": "60003734", "authority": ""},
        {"org_body": "60003734", "authority": "91"},
        {"org_body": "60003734", "authority": "Z"},
        {"org_body": "60003734", "org_type": "S"},
        {"org_body": "60003734", "division": "11000"},
        {"org_body": "60003734", "division": "11000A"},
        {"org_body": "60003734", "org_type": "a"},  # parts are not normalised
    ],
)
def test_make_uscc_rejects_bad_parts(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        make_uscc(**kwargs)


@pytest.mark.parametrize("bad", ["", "1234567", "123456789", "1234567a", "1234567-"])
def test_org_code_check_character_rejects_bad_body(bad: str) -> None:
    with pytest.raises(ValueError):
        org_code_check_character(bad)


@pytest.mark.parametrize("bad", ["", "9111000060003734", "911100006000373412", "9111000060003734I"])
def test_uscc_check_character_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError):
        uscc_check_character(bad)


@pytest.mark.parametrize("bad", ["", "1101080000000", "110108000000011", "1101080000000A"])
def test_registration_number_check_digit_rejects_bad_input(bad: str) -> None:
    with pytest.raises(ValueError):
        registration_number_check_digit(bad)
    with pytest.raises(ValueError):
        make_registration_number(bad)


def test_uscc_division_validates() -> None:
    assert uscc_division(" 91110000600037341l ") == "110000"
    with pytest.raises(IdentifierError):
        uscc_division("91110000600037341X")


def test_make_uscc_defaults() -> None:
    code = make_uscc(org_body="MA01BCDE")
    assert code.startswith("91500000MA01BCDE")
    assert uscc_division(code) == "500000"


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

uscc_chars = st.sampled_from(USCC_ALPHABET)


@st.composite
def valid_usccs(draw: st.DrawFn) -> str:
    return make_uscc(
        authority=draw(uscc_chars),
        org_type=draw(uscc_chars),
        division=draw(st.text(alphabet=DIGITS, min_size=6, max_size=6)),
        org_body=draw(st.text(alphabet=USCC_ALPHABET, min_size=8, max_size=8)),
    )


@given(valid_usccs())
def test_generated_uscc_is_valid(code: str) -> None:
    assert len(code) == 18
    assert validate_uscc(code) == code
    assert validate_uscc(f" {code.lower()} ") == code
    assert code[16] == org_code_check_character(code[8:16])
    assert code[17] == uscc_check_character(code[:17])


@given(valid_usccs(), st.integers(min_value=0, max_value=17), st.data())
def test_any_single_uscc_substitution_fails(code: str, index: int, data: st.DataObject) -> None:
    replacement = data.draw(st.sampled_from(USCC_ALPHABET.replace(code[index], "")))
    mutated = code[:index] + replacement + code[index + 1 :]
    assert not is_valid_uscc(mutated)
    with pytest.raises(IdentifierError) as info:
        validate_uscc(mutated)
    if 2 <= index <= 7 and replacement not in DIGITS:
        expected = {"invalid_character"}
    elif 8 <= index <= 16:
        # The mod-11 organisation-code check misses changes of 11 or 22 in value
        # (e.g. '0' -> 'B'), but the mod-31 USCC check then catches them.
        expected = {"invalid_org_code_check", "invalid_check_character"}
    else:
        expected = {"invalid_check_character"}
    assert info.value.code in expected


def test_every_single_substitution_of_known_uscc_fails() -> None:
    code = "91350100M000100Y43"
    for index, original in enumerate(code):
        for replacement in USCC_ALPHABET:
            if replacement != original:
                assert not is_valid_uscc(code[:index] + replacement + code[index + 1 :])


fourteen_digits = st.text(alphabet=DIGITS, min_size=14, max_size=14)


@given(fourteen_digits)
def test_generated_registration_number_is_valid(first14: str) -> None:
    number = make_registration_number(first14)
    assert len(number) == 15
    assert number[:14] == first14
    assert validate_registration_number(number) == number


@given(fourteen_digits, st.integers(min_value=0, max_value=14), st.data())
def test_any_single_registration_digit_substitution_fails(
    first14: str, index: int, data: st.DataObject
) -> None:
    number = make_registration_number(first14)
    replacement = data.draw(st.sampled_from(DIGITS.replace(number[index], "")))
    mutated = number[:index] + replacement + number[index + 1 :]
    assert not is_valid_registration_number(mutated)
    with pytest.raises(IdentifierError) as info:
        validate_registration_number(mutated)
    assert info.value.code == "invalid_check_digit"


def test_every_single_substitution_of_known_registration_number_fails() -> None:
    number = "110108000000016"
    for index, original in enumerate(number):
        for replacement in DIGITS:
            if replacement != original:
                assert not is_valid_registration_number(
                    number[:index] + replacement + number[index + 1 :]
                )
