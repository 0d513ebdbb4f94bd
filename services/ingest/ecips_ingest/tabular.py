"""A category as a table: the columns of its CSV/XLSX files, their Chinese
headers (field titles) and keys, and turning one row of cells into a record.

Headers are matched by title or by key (``fine.value``; a data field whose key
is also an envelope field is ``data.<key>``). Money objects take two columns
(``罚款金额（金额）``, ``罚款金额（币种）``); lists of values are separated by
``、`` ``;`` or ``,``; anything deeper is JSON in its cell.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ecips_common.problems import FieldError
from ecips_ingest.catalogue import Category

CellKind = Literal["string", "integer", "number", "boolean", "date", "list", "json"]

# Columns of an errors file that a corrected re-upload may keep: they are ignored.
ROW_NUMBER_HEADER = "原行号"
ERRORS_HEADER = "错误说明"
IGNORED_HEADERS = frozenset({ROW_NUMBER_HEADER, ERRORS_HEADER, "_row", "_errors"})

_LIST_SEPARATORS = re.compile(r"[;；、,，|]")
_DATE_FORMS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"),
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"),
    re.compile(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})$"),
    re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
)
_TRUE = frozenset({"是", "有", "true", "yes", "y", "1"})
_FALSE = frozenset({"否", "无", "false", "no", "n", "0"})


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    title: str
    path: tuple[str, ...]
    kind: CellKind
    required: bool
    item_kind: CellKind | None = None
    allowed: tuple[str, ...] = ()
    description: str = ""

    @property
    def field(self) -> str:
        return ".".join(self.path)


ENVELOPE_COLUMNS: tuple[Column, ...] = (
    Column("source_id", "业务编号", ("source_id",), "string", True,
           description="本部门对该记录的唯一编号（如决定书文号）；同一编号再次提交即更正"),
    Column("uscc", "统一社会信用代码", ("uscc",), "string", False,
           description="18位统一社会信用代码；与工商注册号至少填一项"),
    Column("registration_number", "工商注册号", ("registration_number",), "string", False,
           description="2015年前的15位工商注册号（无统一社会信用代码时填写）"),
    Column("enterprise_name", "行政相对人名称", ("enterprise_name",), "string", True,
           description="企业名称，应与统一社会信用代码对应"),
    Column("occurred_on", "发生日期", ("occurred_on",), "date", True,
           description="记录发生的日期（YYYY-MM-DD）"),
)  # fmt: skip
_ENVELOPE_KEYS = frozenset(c.key for c in ENVELOPE_COLUMNS)


def header_token(text: str) -> str:
    """Headers compare without width, case or spaces: ``罚款金额(金额)`` = ``罚款金额（金额）``."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).lower()


def _kind(schema: dict[str, Any]) -> CellKind:
    kind = schema.get("type")
    if kind == "string":
        return "date" if schema.get("format") == "date" else "string"
    if kind in ("integer", "number", "boolean"):
        return kind  # type: ignore[no-any-return]
    return "json"


@dataclass(frozen=True)
class CategoryTable:
    """The columns of one category's files, in template order."""

    category: Category
    columns: tuple[Column, ...]
    by_header: dict[str, Column] = field(repr=False)

    @classmethod
    def build(cls, category: Category) -> CategoryTable:
        required = set(category.json_schema.get("required", ()))
        columns: list[Column] = []
        for column in ENVELOPE_COLUMNS:
            if column.key == "occurred_on" and category.occurred_on_field:
                source = category.properties[category.occurred_on_field]["title"]
                column = Column(
                    column.key, column.title, column.path, column.kind, False,
                    description=f"可不填：默认取“{source}”",
                )  # fmt: skip
            columns.append(column)
        for name, schema in category.properties.items():
            key = f"data.{name}" if name in _ENVELOPE_KEYS else name
            title = schema["title"]
            description = schema.get("description", "")
            sub = schema.get("properties")
            if (
                schema.get("type") == "object"
                and sub
                and all(_kind(s) != "json" for s in sub.values())
            ):
                inner_required = set(schema.get("required", ()))
                for sub_name, sub_schema in sub.items():
                    columns.append(
                        Column(
                            f"{key}.{sub_name}",
                            f"{title}（{sub_schema['title']}）",
                            ("data", name, sub_name),
                            _kind(sub_schema),
                            name in required and sub_name in inner_required,
                            allowed=tuple(str(v) for v in sub_schema.get("enum", ())),
                        )
                    )
                continue
            kind = _kind(schema)
            item_kind: CellKind | None = None
            allowed = tuple(str(v) for v in schema.get("enum", ()))
            items = schema.get("items")
            if schema.get("type") == "array" and isinstance(items, dict):
                item_kind = _kind(items)
                if item_kind != "json":
                    kind = "list"
                    allowed = tuple(str(v) for v in items.get("enum", ()))
            columns.append(
                Column(
                    key,
                    title,
                    ("data", name),
                    kind,
                    name in required,
                    item_kind=item_kind if kind == "list" else None,
                    allowed=allowed,
                    description=description,
                )
            )
        by_header: dict[str, Column] = {}
        for column in columns:
            aliases = {column.title, column.key, column.field}
            for alias in aliases:
                token = header_token(alias)
                if by_header.get(token, column) is not column:
                    raise ValueError(
                        f"category {category.key!r}: header {alias!r} names two columns"
                    )
                by_header[token] = column
        return cls(category, tuple(columns), by_header)

    def resolve_header(self, headers: list[str]) -> tuple[list[Column | None], list[FieldError]]:
        """The column of each header cell (None: ignored), or what is wrong with the header."""
        resolved: list[Column | None] = []
        errors: list[FieldError] = []
        seen: dict[str, str] = {}
        for position, raw in enumerate(headers, start=1):
            text = (raw or "").strip()
            if not text or text in IGNORED_HEADERS:
                resolved.append(None)
                continue
            column = self.by_header.get(header_token(text))
            if column is None:
                errors.append(
                    FieldError(
                        field=f"columns[{position}]",
                        code="unknown_column",
                        message=f"unknown column {text!r}; see the template of "
                        f"{self.category.key} for the column headers",
                    )
                )
            elif column.key in seen:
                errors.append(
                    FieldError(
                        field=f"columns[{position}]",
                        code="duplicate_column",
                        message=f"{text!r} repeats the column {seen[column.key]!r}",
                    )
                )
            else:
                seen[column.key] = text
            resolved.append(column)
        present = {c.key for c in resolved if c is not None}
        for column in self.columns:
            if column.required and column.key not in present:
                errors.append(
                    FieldError(
                        field=column.field,
                        code="missing_column",
                        message=f"the required column {column.title} ({column.key}) is missing",
                    )
                )
        return resolved, errors

    def record_from_cells(
        self, columns: list[Column | None], cells: list[Any]
    ) -> tuple[dict[str, Any], list[FieldError], str | None]:
        """A submission dict from one row's cells, the cells that could not be read, and
        the data field ``occurred_on`` was taken from (when the row left it out)."""
        record: dict[str, Any] = {"category": self.category.key, "data": {}}
        errors: list[FieldError] = []
        for column, cell in zip(columns, cells, strict=False):
            if column is None or _blank(cell):
                continue
            try:
                value = parse_cell(column, cell)
            except CellError as exc:
                errors.append(FieldError(field=exc.field or column.field, code=exc.code,
                                         message=f"{column.title}: {exc.message}"))  # fmt: skip
                continue
            node = record
            for part in column.path[:-1]:
                node = node.setdefault(part, {})
            node[column.path[-1]] = value
        occurred_field = self.category.occurred_on_field
        if "occurred_on" not in record and occurred_field:
            derived = record["data"].get(occurred_field)
            if isinstance(derived, str):
                record["occurred_on"] = derived
                return record, errors, occurred_field
        return record, errors, None


class CellError(ValueError):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def cell_text(cell: Any) -> str:
    """A cell as the text a person sees (numbers without a trailing ``.0``)."""
    if isinstance(cell, bool):
        return "是" if cell else "否"
    if isinstance(cell, float):
        if cell.is_integer():
            return str(int(cell))
        return format(Decimal(repr(cell)), "f")
    if isinstance(cell, datetime):
        return cell.date().isoformat() if cell.time() == datetime.min.time() else cell.isoformat()
    if isinstance(cell, date):
        return cell.isoformat()
    return str(cell).strip()


def parse_date(text: str) -> str:
    for form in _DATE_FORMS:
        match = form.match(text)
        if match:
            try:
                return date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:
                break
    raise CellError("invalid_date", f"{text!r} is not a date (YYYY-MM-DD)")


def parse_cell(column: Column, cell: Any) -> Any:
    if column.kind == "date" and isinstance(cell, datetime | date):
        return (cell.date() if isinstance(cell, datetime) else cell).isoformat()
    text = cell_text(cell)
    match column.kind:
        case "string":
            return text
        case "date":
            return parse_date(text)
        case "integer":
            return _integer(text)
        case "number":
            try:
                return float(text)
            except ValueError:
                raise CellError("not_a_number", f"{text!r} is not a number") from None
        case "boolean":
            lowered = text.lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise CellError("not_a_boolean", f"{text!r} is not 是/否")
        case "list":
            items = [p.strip() for p in _LIST_SEPARATORS.split(text) if p.strip()]
            if column.item_kind == "integer":
                values: list[Any] = []
                for index, item in enumerate(items):
                    try:
                        values.append(_integer(item))
                    except CellError as exc:
                        raise CellError(exc.code, exc.message, f"{column.field}[{index}]") from None
                return values
            return items
        case _:
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise CellError("invalid_json", f"not valid JSON: {exc.msg}") from None


def _integer(text: str) -> int:
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise CellError("not_an_integer", f"{text!r} is not a whole number") from None
    if number != number.to_integral_value():
        raise CellError("not_an_integer", f"{text!r} is not a whole number")
    return int(number)
