"""Batch files: recognising and checking an upload, reading its rows one at a
time from a (spooled) file, the per-category templates and the errors file.

Nothing here holds a whole file in memory: CSV and NDJSON are decoded and
parsed as a stream; XLSX is read with openpyxl's read-only (streaming) mode.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Literal

from openpyxl import Workbook, load_workbook  # type: ignore[import-untyped]
from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]
from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

from ecips_common.problems import FieldError, InvalidInput
from ecips_ingest.catalogue import Example
from ecips_ingest.tabular import (
    CategoryTable,
    Column,
    cell_text,
)

FileFormat = Literal["csv", "xlsx", "ndjson"]
_READ_SIZE = 1024 * 1024
_FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
# XLSX limits (see check_xlsx_archive): what a spreadsheet application saves stays far
# below them; a zip bomb does not.
XLSX_MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
XLSX_MAX_PART_BYTES = 64 * 1024 * 1024
XLSX_MAX_RATIO = 200
XLSX_RATIO_CHECKED_ABOVE = 16 * 1024 * 1024
XLSX_MAX_ROWS = 1_048_576
csv.field_size_limit(1024 * 1024)


class MalformedFile(ValueError):
    """The file cannot be read as its format; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class RawRow:
    number: int
    cells: list[Any]


@dataclass(frozen=True, slots=True)
class UploadInfo:
    encoding: str | None
    header: list[str] | None
    total: int | None


def detect_format(filename: str, declared: str | None, head: bytes) -> FileFormat:
    if declared:
        if declared not in ("csv", "xlsx", "ndjson"):
            raise _invalid("format", "unsupported_format", "format must be csv, xlsx or ndjson")
        return declared  # type: ignore[return-value]
    lowered = filename.lower()
    if head.startswith(b"PK\x03\x04") or lowered.endswith(".xlsx"):
        return "xlsx"
    if lowered.endswith((".ndjson", ".jsonl")):
        return "ndjson"
    if lowered.endswith((".csv", ".txt")):
        return "csv"
    raise _invalid(
        "file",
        "unsupported_format",
        "name the file .csv, .xlsx or .ndjson (or give the form field format)",
    )


def _invalid(field: str, code: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError(field=field, code=code, message=message)])


def detect_encoding(file: IO[bytes]) -> str:
    """UTF-8 (with or without BOM) or, as Excel saves on Chinese Windows, GB18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        file.seek(0)
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while block := file.read(_READ_SIZE):
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        file.seek(0)
        return encoding
    file.seek(0)
    raise MalformedFile("unreadable_encoding", "the file is neither UTF-8 nor GB18030 text")


@contextmanager
def _text(file: IO[bytes], encoding: str) -> Iterator[io.TextIOWrapper]:
    file.seek(0)
    wrapper = io.TextIOWrapper(file, encoding=encoding, newline="")
    try:
        yield wrapper
    finally:
        wrapper.detach()


def _csv_records(text: io.TextIOWrapper) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, cells), skipping blank lines."""
    reader = csv.reader(text, strict=True)
    start = 1
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield start, cells
            start = reader.line_num + 1
    except csv.Error as exc:
        raise MalformedFile("malformed_csv", f"line {reader.line_num}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise MalformedFile("unreadable_encoding", f"line {reader.line_num}: {exc}") from exc


def inspect_upload(file: IO[bytes], fmt: FileFormat) -> UploadInfo:
    """Check the file can be read, and count CSV/NDJSON rows (raises MalformedFile)."""
    file.seek(0, io.SEEK_END)
    if file.tell() == 0:
        raise MalformedFile("empty_file", "the file is empty")
    file.seek(0)
    if fmt == "xlsx":
        with _workbook_rows(file) as rows:
            header = next(rows, None)
        if header is None:
            raise MalformedFile("empty_file", "the first worksheet is empty")
        return UploadInfo(None, [cell_text(c) if c is not None else "" for c in header], None)
    encoding = detect_encoding(file) if fmt == "csv" else "utf-8-sig"
    if fmt == "ndjson":
        try:
            total = sum(1 for _ in _ndjson_lines(file))
        except UnicodeDecodeError as exc:
            raise MalformedFile("unreadable_encoding", f"NDJSON must be UTF-8: {exc}") from exc
        return UploadInfo(encoding, None, total)
    with _text(file, encoding) as text:
        records = _csv_records(text)
        first = next(records, None)
        if first is None:
            raise MalformedFile("empty_file", "the file has no header row")
        total = sum(1 for _ in records)
    return UploadInfo(encoding, first[1], total)


def check_xlsx_archive(file: IO[bytes]) -> None:
    """Refuse a workbook that would unpack to far more than it weighs (a zip bomb)
    before anything is unpacked. The sizes checked are the ones the archive declares;
    Python's zipfile never inflates a member past its declared size (a lie ends in a
    CRC error), so they bound the work and the memory."""
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise MalformedFile("malformed_xlsx", f"not a readable XLSX workbook: {exc}") from exc
    finally:
        file.seek(0)
    total = 0
    for member in members:
        total += member.file_size
        streamed = member.filename.startswith("xl/worksheets/")
        if not streamed and member.file_size > XLSX_MAX_PART_BYTES:
            # openpyxl reads every part but the worksheets (shared strings, styles) whole.
            raise MalformedFile(
                "xlsx_too_large",
                f"{member.filename} unpacks to {member.file_size} bytes; "
                f"at most {XLSX_MAX_PART_BYTES}: save large data as CSV",
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > XLSX_RATIO_CHECKED_ABOVE and ratio > XLSX_MAX_RATIO:
            raise MalformedFile(
                "xlsx_too_large",
                f"{member.filename} unpacks {ratio:.0f} times its packed size "
                f"(at most {XLSX_MAX_RATIO}): not a workbook a spreadsheet saved",
            )
    if total > XLSX_MAX_UNPACKED_BYTES:
        raise MalformedFile(
            "xlsx_too_large",
            f"the workbook unpacks to {total} bytes; at most {XLSX_MAX_UNPACKED_BYTES}: "
            "split it into several files or save it as CSV",
        )


@contextmanager
def _workbook_rows(file: IO[bytes]) -> Iterator[Iterator[tuple[Any, ...]]]:
    check_xlsx_archive(file)
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise MalformedFile("malformed_xlsx", f"not a readable XLSX workbook: {exc}") from exc
    except SyntaxError as exc:  # xml.etree's ParseError
        raise MalformedFile("malformed_xlsx", f"the workbook's XML is damaged: {exc}") from exc
    try:
        if not workbook.worksheets:
            raise MalformedFile("empty_file", "the workbook has no worksheet")
        sheet = workbook.worksheets[0]
        # Rows as the sheet holds them: a declared size (<dimension ref="A1:XFD1048576">)
        # would pad every row to 16,384 cells.
        sheet.reset_dimensions()

        def rows() -> Iterator[tuple[Any, ...]]:
            try:
                for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    if number > XLSX_MAX_ROWS:
                        # Row numbers past Excel's last row only come from a forged sheet,
                        # whose gaps would otherwise be walked one empty row at a time.
                        raise MalformedFile(
                            "too_many_rows",
                            f"the worksheet has more than {XLSX_MAX_ROWS} rows, Excel's limit",
                        )
                    yield row
            except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
                if isinstance(exc, MalformedFile):
                    raise
                raise MalformedFile("malformed_xlsx", f"the worksheet is damaged: {exc}") from exc
            except SyntaxError as exc:
                raise MalformedFile("malformed_xlsx", f"the worksheet is damaged: {exc}") from exc

        yield rows()
    finally:
        workbook.close()


def _ndjson_lines(file: IO[bytes]) -> Iterator[tuple[int, str]]:
    with _text(file, "utf-8-sig") as text:
        for number, line in enumerate(text, start=1):
            if line.strip():
                yield number, line.rstrip("\r\n")


@contextmanager
def data_rows(file: IO[bytes], fmt: FileFormat, encoding: str | None) -> Iterator[Iterator[RawRow]]:
    """The data rows after the header (NDJSON: every non-blank line, as one cell)."""
    if fmt == "xlsx":
        with _workbook_rows(file) as rows:

            def xlsx() -> Iterator[RawRow]:
                next(rows, None)
                for number, values in enumerate(rows, start=2):
                    if any(v is not None and str(v).strip() for v in values):
                        yield RawRow(number, list(values))

            yield xlsx()
        return
    if fmt == "ndjson":

        def ndjson() -> Iterator[RawRow]:
            try:
                for number, line in _ndjson_lines(file):
                    yield RawRow(number, [line])
            except UnicodeDecodeError as exc:
                raise MalformedFile("unreadable_encoding", str(exc)) from exc

        yield ndjson()
        return
    with _text(file, encoding or "utf-8-sig") as text:
        records = _csv_records(text)
        next(records, None)
        yield (RawRow(number, list(cells)) for number, cells in records)


def count_rows(file: IO[bytes], fmt: FileFormat, encoding: str | None) -> int:
    with data_rows(file, fmt, encoding) as rows:
        return sum(1 for _ in rows)


# --- what goes back to the department ----------------------------------------


def neutralise(cell: str) -> str:
    """Spreadsheets run a cell starting with = + - @ (or tab/CR) as a formula: quote it."""
    return "'" + cell if cell.startswith(_FORMULA_LEADS) else cell


def csv_line(cells: Iterable[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([neutralise(c) for c in cells])
    return out.getvalue().encode("utf-8")


UTF8_BOM = codecs.BOM_UTF8


def template_csv(table: CategoryTable) -> bytes:
    """The header row (Chinese titles), with a BOM so Excel reads it as UTF-8."""
    return UTF8_BOM + csv_line(c.title for c in table.columns)


def _example_cells(table: CategoryTable, record: dict[str, Any]) -> list[str]:
    cells = []
    for column in table.columns:
        node: Any = record
        for part in column.path:
            node = node.get(part) if isinstance(node, dict) else None
        cells.append(_cell_for(column, node))
    return cells


def _cell_for(column: Column, value: Any) -> str:
    if value is None:
        return ""
    if column.kind == "list" and isinstance(value, list):
        return "、".join(str(v) for v in value)
    if column.kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def template_xlsx(table: CategoryTable, example: Example) -> bytes:
    """Sheet 1 to fill in (uploads read the first sheet), a field guide and an example."""
    workbook = Workbook(write_only=True)
    bold = Font(bold=True)

    def header_row(sheet: Any, titles: Iterable[str]) -> list[WriteOnlyCell]:
        cells = []
        for title in titles:
            cell = WriteOnlyCell(sheet, value=title)
            cell.font = bold
            cells.append(cell)
        return cells

    data = workbook.create_sheet("数据")
    data.append(header_row(data, (c.title for c in table.columns)))
    guide = workbook.create_sheet("字段说明")
    guide.append(header_row(guide, ("列名", "字段键", "必填", "类型", "可选值", "说明")))
    kinds = {
        "string": "文本",
        "date": "日期（YYYY-MM-DD）",
        "integer": "整数",
        "number": "数字",
        "boolean": "是/否",
        "list": "多项，用“、”分隔",
        "json": "JSON",
    }
    for column in table.columns:
        guide.append(
            [
                column.title,
                column.key,
                "是" if column.required else "",
                kinds[column.kind],
                "、".join(column.allowed),
                column.description,
            ]
        )
    sample = workbook.create_sheet("示例")
    sample.append(header_row(sample, (c.title for c in table.columns)))
    sample.append(_example_cells(table, example.record))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
