"""CSV exports that open cleanly in Norwegian Excel and cannot smuggle formulas (RULES.md R40).

Excel dialect (default): UTF-8 with BOM, `;` separator, decimal comma, fields with
newlines quoted, and text cells beginning with `= + - @ | %`, tab or CR prefixed with `'`
(defusedcsv handles the first six; tab and CR are handled here). Numbers stay numbers.
Plain dialect (`excel=False`): RFC 4180 for tools — UTF-8 without BOM, comma, decimal
point, CRLF line ends, values unchanged, so a cell such as `=HYPERLINK(...)` stays a formula
for a spreadsheet that opens the file: the pages label it unsafe for spreadsheets and offer
it to DPOs only.
XLSX (`to_xlsx_bytes`): one worksheet; numbers, booleans and dates typed as such, and every
text cell stored as a string, so text that looks like a formula stays text.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from numbers import Number

import numpy as np
import pandas as pd
from defusedcsv import csv as defused
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

BOM = "\ufeff"
_CONTROL_STARTS = ("\t", "\r")


def _is_missing(value) -> bool:
    """None, NaN, NaT and pd.NA (what a nullable Int64/boolean column holds) are empty cells."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, Decimal):
        return value.is_nan()
    return isinstance(value, float) and math.isnan(value)


def _excel_cell(value):
    """One value as Excel reads it in a Norwegian locale; text is neutralised by defusedcsv."""
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Number):
        if isinstance(value, float | Decimal) and not math.isfinite(value):
            return ""  # Excel has no infinity; "-inf" would also read as a formula
        # Decimal comma so Excel (nb-NO) parses the cell as a number. Positional notation:
        # "-1e-05" would not read as a number and defusedcsv would neutralise it.
        return _number_text(value, positional=True).replace(".", ",")
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text.startswith(_CONTROL_STARTS):
        return "'" + text
    return text


def _plain_cell(value):
    if _is_missing(value):
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Number):
        return _number_text(value)
    if isinstance(value, datetime | pd.Timestamp):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _number_text(value: Number, *, positional: bool = False) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        text = repr(float(value))  # shortest text that reads back as the same float
        if positional and "e" in text:
            return format(Decimal(text), "f")
        return text
    return str(value)


def iter_csv(frames: Iterable[pd.DataFrame], *, excel: bool = True) -> Iterator[bytes]:
    """Yield a CSV file chunk by chunk from DataFrames with the same columns (header once).

    For large exports: the caller streams frames from a cursor and never holds them all.
    """
    header_written = False
    for frame in frames:
        buffer = io.StringIO(newline="")
        if excel:
            writer = defused.writer(
                buffer, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
            )
            cell = _excel_cell
        else:
            writer = csv.writer(
                buffer, delimiter=",", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n"
            )
            cell = _plain_cell
        if not header_written:
            if excel:
                buffer.write(BOM)
            writer.writerow([cell(str(c)) for c in frame.columns])
            header_written = True
        for row in frame.itertuples(index=False, name=None):
            writer.writerow([cell(v) for v in row])
        yield buffer.getvalue().encode("utf-8")


def to_csv_bytes(df: pd.DataFrame, *, excel: bool = True) -> bytes:
    """The whole DataFrame as CSV bytes, columns in their order (RULES.md R40).

    `excel=True`: BOM, `;`, decimal comma, formula-like text neutralised with `'`.
    `excel=False`: plain RFC 4180 (comma, decimal point, no BOM, values unchanged).
    """
    return b"".join(iter_csv([df], excel=excel))


# --- XLSX ----------------------------------------------------------------------------------

XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_XLSX_CHUNK_ROWS = 10_000
_SHEET_NAME_FORBIDDEN = str.maketrans({c: " " for c in "[]:*?/\\"})


def to_xlsx_bytes(df: pd.DataFrame, *, sheet: str = "Export") -> bytes:
    """The whole DataFrame as an Excel workbook (XLSX) with one sheet, header row first
    (RULES.md R40).

    Numbers (ints, floats, Decimals) and booleans stay typed; dates and naive-UTC timestamps
    become date cells (yyyy-mm-dd, yyyy-mm-dd hh:mm:ss); missing values and infinities are
    empty cells. Every other value is stored as a text cell, never as a formula, so
    `=HYPERLINK(...)` shows as that text. Control characters XLSX cannot hold are replaced
    by U+FFFD. `sheet` is the worksheet's name (31 characters at most, `[]:*?/\\` become
    spaces). Rows are written in chunks to a write-only workbook.
    """
    book = Workbook(write_only=True)
    sheet_name = (str(sheet).translate(_SHEET_NAME_FORBIDDEN).strip() or "Export")[:31]
    ws = book.create_sheet(sheet_name)
    bold = Font(bold=True)
    header = []
    for column in df.columns:
        cell = _xlsx_cell(ws, str(column))
        cell.font = bold
        header.append(cell)
    ws.append(header)
    for start in range(0, len(df), _XLSX_CHUNK_ROWS):
        chunk = df.iloc[start : start + _XLSX_CHUNK_ROWS]
        for row in chunk.itertuples(index=False, name=None):
            ws.append([_xlsx_cell(ws, value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_cell(ws, value) -> WriteOnlyCell:
    """One value as a typed cell; text is forced to the string type, so it is never a formula."""
    if _is_missing(value):
        return WriteOnlyCell(ws, value=None)
    if isinstance(value, bool | np.bool_):
        return WriteOnlyCell(ws, value=bool(value))
    if isinstance(value, Number):
        if isinstance(value, float | Decimal | np.floating) and not math.isfinite(value):
            return WriteOnlyCell(ws, value=None)  # Excel has no infinity or NaN
        if isinstance(value, np.integer):
            value = int(value)
        elif isinstance(value, np.floating):
            value = float(value)
        return WriteOnlyCell(ws, value=value)
    if isinstance(value, datetime | pd.Timestamp):
        moment = pd.Timestamp(value)
        if moment.tzinfo is not None:  # Excel has no time zones: the wall time of its
            moment = moment.tz_localize(None)  # own zone, which the column's header names
        cell = WriteOnlyCell(ws, value=moment.to_pydatetime())
        cell.number_format = "yyyy-mm-dd hh:mm:ss"
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    cell = WriteOnlyCell(ws, value=None)
    # Assigning the text and then the type: openpyxl would otherwise mark "=..." as a formula.
    cell.value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", str(value))
    cell.data_type = "s"
    return cell
