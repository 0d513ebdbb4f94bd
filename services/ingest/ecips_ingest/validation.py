"""Checking a record before it is accepted: who may submit it, its data's JSON
Schema, and the data-quality rules (数据质量校核规则) from the catalogue.

Every problem names the field and a stable code; the same checks serve single
submissions and every row of a batch.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from jsonschema import ValidationError as SchemaViolation

from ecips_common.identifiers import (
    IdentifierError,
    validate_registration_number,
    validate_uscc,
)
from ecips_common.problems import FieldError, InvalidInput, ProblemError
from ecips_common.text import text_fault
from ecips_ingest.catalogue import MONEY_PATTERN, Catalogue, CatalogueError, Category
from ecips_ingest.schemas import RecordSubmission

_SCHEMA_CODES = {
    "required": "required",
    "additionalProperties": "unknown_field",
    "enum": "not_allowed",
    "const": "not_allowed",
    "pattern": "invalid_format",
    "minLength": "too_short",
    "maxLength": "too_long",
    "minItems": "too_few_items",
    "maxItems": "too_many_items",
    "uniqueItems": "duplicate_items",
    "minimum": "too_small",
    "maximum": "too_large",
}
_TYPE_CODES = {
    "string": "not_a_string",
    "integer": "not_an_integer",
    "number": "not_a_number",
    "boolean": "not_a_boolean",
    "object": "not_an_object",
    "array": "not_a_list",
}
_FORMAT_CODES = {"date": "invalid_date", "email": "invalid_email"}


class JsonRefused(ValueError):
    """JSON a record may not be written in, though Python's parser would read it."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            # Parsers disagree on which of two values wins; a record must not be ambiguous.
            raise JsonRefused(key, "duplicate_key", f"the key {key!r} appears twice in one object")
        found[key] = value
    return found


def _no_constants(name: str) -> Any:
    raise JsonRefused("body", "invalid_json", f"{name} is not a JSON number")


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise JsonRefused("body", "invalid_json", f"{text} is beyond any number a record holds")
    return number


def parse_json_strictly(text: str | bytes) -> Any:
    """JSON as RFC 8259 has it: no duplicate keys, no NaN or Infinity; nesting too deep
    for the parser and numbers too long to read are refused (JsonRefused), not crashed
    on. Syntax errors raise json.JSONDecodeError as usual."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_no_constants,
            parse_float=_finite,
        )
    except RecursionError:
        raise JsonRefused("body", "invalid_json", "the JSON is nested too deeply") from None
    except (JsonRefused, json.JSONDecodeError):
        raise
    except ValueError as exc:
        # int() refuses numbers of more than 4300 digits; bytes may not be Unicode at all.
        raise JsonRefused("body", "invalid_json", f"the JSON cannot be read: {exc}") from None


def check_submission(
    catalogue: Catalogue, department: str, submission: RecordSubmission, today: date
) -> RecordSubmission:
    """The submission with its data normalised, or a problem naming every fault.

    403 ``category_not_permitted`` when the department may not submit the
    category; 422 ``validation_failed`` otherwise.
    """
    errors: list[FieldError] = []
    if submission.uscc is None and submission.registration_number is None:
        errors.append(
            FieldError(
                field="uscc",
                code="required",
                message="give the enterprise's uscc or its registration_number",
            )
        )
    category = catalogue.categories.get(submission.category)
    if category is None:
        errors.append(
            FieldError(
                field="category",
                code="unknown_category",
                message=f"unknown category {submission.category!r}; see GET /v1/categories",
            )
        )
        raise InvalidInput(errors)
    if not catalogue.may_submit(department, submission.category):
        raise ProblemError(
            403,
            "category_not_permitted",
            "Forbidden",
            f"Department {department} may not submit {submission.category} records.",
            errors=[
                FieldError(
                    field="category",
                    code="category_not_permitted",
                    message=f"{department} may not submit {submission.category} records",
                )
            ],
        )
    data, text_errors = normalise_text(submission.data, "data")
    errors.extend(text_errors)
    if not text_errors:
        errors.extend(data_errors(catalogue, category, data))
        errors.extend(quality_errors(category, data, today, already=errors))
    if errors:
        raise InvalidInput(errors)
    return submission.model_copy(update={"data": data})


def normalise_text(value: Any, path: str) -> tuple[Any, list[FieldError]]:
    """Strings stripped of surrounding whitespace; control characters and unpaired
    surrogates are an error."""
    if isinstance(value, str):
        fault = text_fault(value)
        if fault is not None:
            return value, [FieldError(field=path, code=fault[0], message=fault[1])]
        return value.strip(), []
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        errors: list[FieldError] = []
        for key, item in value.items():
            key_fault = text_fault(key)
            if key_fault is not None:
                code, message = key_fault
                errors.append(
                    FieldError(
                        field=f"{path}.{key}",
                        code=code,
                        message=message.replace("the text", "the field name", 1),
                    )
                )
            result[key], found = normalise_text(item, f"{path}.{key}")
            errors.extend(found)
        return result, errors
    if isinstance(value, list):
        items: list[Any] = []
        errors = []
        for index, item in enumerate(value):
            normalised, found = normalise_text(item, f"{path}[{index}]")
            items.append(normalised)
            errors.extend(found)
        return items, errors
    return value, []


def data_errors(catalogue: Catalogue, category: Category, data: dict[str, Any]) -> list[FieldError]:
    """JSON Schema violations of a record's ``data``, one per offending field."""
    if catalogue.fast_validators[category.key].is_valid(data):
        return []
    errors: list[FieldError] = []
    violations = catalogue.validators[category.key].iter_errors(data)
    for violation in sorted(violations, key=lambda e: [str(p) for p in e.absolute_path]):
        errors.extend(_field_errors(category, violation))
    return _unique(errors)


def _path(parts: Iterable[Any]) -> str:
    return "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _title(category: Category, path: list[Any]) -> str | None:
    """The field's title as the file column shows it: ``罚款金额（金额）`` for a nested field."""
    schema: dict[str, Any] = category.json_schema
    titles: list[str] = []
    for part in path:
        if isinstance(part, int):
            schema = schema.get("items", {})
        else:
            schema = schema.get("properties", {}).get(part, {})
            title = schema.get("title")
            if isinstance(title, str):
                titles.append(title)
    if not titles or not schema:
        return None
    return titles[-1] if len(titles) == 1 else f"{titles[-2]}（{titles[-1]}）"


def _field_errors(category: Category, violation: SchemaViolation) -> list[FieldError]:
    path = list(violation.absolute_path)
    validator = str(violation.validator)
    if validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", violation.message)
        return [
            FieldError(
                field=_path([*path, name]),
                code="required",
                message=f"{_title(category, [*path, name]) or name}: this field is required",
            )
            for name in missing
        ]
    if validator == "additionalProperties":
        extra = re.findall(r"'([^']+)'", violation.message.split("(")[-1])
        return [
            FieldError(field=_path([*path, name]), code="unknown_field", message="unknown field")
            for name in extra
        ]
    code = _SCHEMA_CODES.get(validator, "invalid")
    message = violation.message
    if validator == "type":
        code = _TYPE_CODES.get(str(violation.validator_value), "invalid_type")
    elif validator == "format":
        code, message = _format_code(str(violation.validator_value), violation.instance, message)
    elif validator == "pattern" and violation.validator_value == MONEY_PATTERN:
        text = str(violation.instance)
        if text.startswith("-"):
            code, message = "negative_amount", "an amount may not be negative"
        else:
            code = "invalid_amount"
            message = f"{text!r} is not an amount: digits with an optional decimal point only"
    elif validator in ("enum", "const") and isinstance(violation.validator_value, list):
        allowed = "、".join(str(v) for v in violation.validator_value)
        message = f"{violation.instance!r} is not allowed; one of: {allowed}"
    title = _title(category, path)
    return [
        FieldError(
            field=_path(path), code=code, message=f"{title}: {message}" if title else message
        )
    ]


def _format_code(fmt: str, instance: Any, message: str) -> tuple[str, str]:
    if fmt == "uscc":
        try:
            validate_uscc(str(instance))
        except IdentifierError as exc:
            return exc.code, exc.message
    if fmt == "registration-number":
        try:
            validate_registration_number(str(instance))
        except IdentifierError as exc:
            return exc.code, exc.message
    return _FORMAT_CODES.get(fmt, "invalid_format"), message


def quality_errors(
    category: Category, data: dict[str, Any], today: date, *, already: Iterable[FieldError] = ()
) -> list[FieldError]:
    """Dates not in the future (unless the catalogue allows it) and in order."""
    taken = {e.field for e in already}
    errors: list[FieldError] = []
    dates: dict[str, date] = {}
    for name in category.date_fields:
        raw = data.get(name)
        if isinstance(raw, str):
            try:
                dates[name] = date.fromisoformat(raw)
            except ValueError:
                continue
    for name, value in dates.items():
        field = f"data.{name}"
        if name not in category.quality.future_allowed and value > today and field not in taken:
            errors.append(
                FieldError(
                    field=field,
                    code="date_in_future",
                    message=f"{category.properties[name]['title']}: {value} is in the future",
                )
            )
            taken.add(field)
    for earlier, later in category.quality.date_order:
        if earlier in dates and later in dates and dates[later] < dates[earlier]:
            field = f"data.{later}"
            if field in taken or f"data.{earlier}" in taken:
                continue
            errors.append(
                FieldError(
                    field=field,
                    code="date_order",
                    message=(
                        f"{category.properties[later]['title']} ({dates[later]}) is before "
                        f"{category.properties[earlier]['title']} ({dates[earlier]})"
                    ),
                )
            )
            taken.add(field)
    return errors


def _unique(errors: list[FieldError]) -> list[FieldError]:
    seen: set[tuple[str, str]] = set()
    result = []
    for error in errors:
        if (error.field, error.code) not in seen:
            seen.add((error.field, error.code))
            result.append(error)
    return result


def check_examples(catalogue: Catalogue, today: date) -> None:
    """Every category's example passes its own checks (catches catalogue drift at start)."""
    for key, example in catalogue.examples.items():
        try:
            submission = RecordSubmission.model_validate(example.record)
            check_submission(catalogue, example.department, submission, today)
        except (ProblemError, ValueError) as exc:
            raise CatalogueError(f"the example of {key!r} is rejected: {exc}") from exc
