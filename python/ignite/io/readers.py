"""Read input files into windows of records. A record that cannot be read keeps its place with
a status naming the reason; only a damaged file (corrupt archive) stops that file.

JSONL and text files are read by the native reader (ignite._engine.NativeReader: decompression,
line framing and JSON field extraction in C++ with the GIL released) when the module has it;
IGNITE_READER=python forces the Python reader below, which is also the reference its tests
compare against. Parquet is read with pyarrow."""
from __future__ import annotations

import io
import os
import zlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np
import orjson

from ignite.io.inputs import InputFile
from ignite.rows.status import (BAD_JSON, FIELD_NOT_STRING, FIELD_NULL, INVALID_UTF8, LINE_TOO_LONG, MISSING_FIELD,
                                MISSING_ID, NOT_AN_OBJECT, OK)
from ignite.rows.window import ArenaTexts

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
MAX_LINE_BYTES = 64 << 20  # longer lines are records with status line_too_long


class DamagedInput(Exception):
    """The file's bytes stop making sense (corrupt or truncated archive)."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}: damaged after line {line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass
class RawWindow:
    texts: Sequence[str]
    ids: list[object]
    lines: np.ndarray
    status: np.ndarray  # uint8 status codes (rows/status.py)
    end_offset: int
    last: bool = False  # the file has no records after this window
    damage: DamagedInput | None = None  # set on the last window of a damaged file
    # The texts as one UTF-8 arena (uint8) and offsets (int64, n+1): set by the native reader.
    text_bytes: np.ndarray | None = None
    text_offsets: np.ndarray | None = None


def native_reader_available() -> bool:
    """Whether the native module was built with the reader (zstd, zlib and simdjson found)."""
    try:
        from ignite import _engine
    except ImportError:
        return False
    return hasattr(_engine, "NativeReader")


def use_native_reader() -> bool:
    return os.environ.get("IGNITE_READER", "").lower() != "python" and native_reader_available()


class _CountingReader(io.RawIOBase):
    """Counts the bytes taken from the underlying (compressed) file, for progress and resume."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()
        super().close()

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = self._raw.readinto(buffer)
        self.consumed += n or 0
        return n or 0


class _FrameStream:
    """Decompresses a file of concatenated frames (zstd frames, gzip members). Unlike the stock
    stream readers it reports a file that ends inside a frame (a truncated download) or carries
    garbage after the last one, and it first hands out every byte decoded before the damage."""

    def __init__(self, raw: _CountingReader, new_decoder: Callable[[], Any], name: str) -> None:
        self._raw, self._new_decoder, self._name = raw, new_decoder, name
        self._decoder = new_decoder()
        self._in_frame = False
        self._error: Exception | None = None

    def read(self, size: int) -> bytes:
        while True:
            if self._error is not None:
                raise self._error
            data = self._raw.read(size)
            if not data:
                if self._in_frame:
                    raise EOFError(f"{self._name} stream ends inside a frame (truncated file?)")
                return b""
            out = []
            try:
                while data:
                    self._in_frame = True
                    out.append(self._decoder.decompress(data))
                    if self._decoder.eof:  # frame done: what follows is the next frame
                        data = self._decoder.unused_data
                        self._decoder = self._new_decoder()
                        self._in_frame = False
                    else:
                        data = b""
            except Exception as exc:  # zstandard.ZstdError, zlib.error: damaged bytes
                self._error = exc
            chunk = b"".join(out)
            if chunk:
                return chunk

    def close(self) -> None:
        self._raw.close()


def _open_stream(item: InputFile) -> tuple[BinaryIO, _CountingReader]:
    raw = open(item.path, "rb")  # noqa: SIM115 - closed by the caller via the returned stream
    counter = _CountingReader(raw)
    if item.compression == "zstd":
        import zstandard

        dctx = zstandard.ZstdDecompressor()
        stream = _FrameStream(counter, dctx.decompressobj, "zstd")
    elif item.compression == "gzip":
        stream = _FrameStream(counter, lambda: zlib.decompressobj(wbits=31), "gzip")
    else:
        stream = io.BufferedReader(counter, buffer_size=READ_CHUNK)
    return stream, counter


TOO_LONG = object()  # stands for a line longer than MAX_LINE_BYTES, whose bytes were dropped


class _ChunkError(Exception):
    """Decompression failed mid-file."""


def _chunks(stream: BinaryIO, skip_lines: int = 0) -> Iterator[bytes]:
    """The decompressed bytes of `stream` in chunks, after its first `skip_lines` lines: those are
    only counted (newlines in whole chunks), never split or parsed, so a resume skips fast."""
    while True:
        try:
            chunk = stream.read(READ_CHUNK)
        except Exception as exc:  # zstandard.ZstdError, gzip.BadGzipFile, EOFError, OSError
            raise _ChunkError(str(exc) or type(exc).__name__) from None
        if not chunk:
            return
        if skip_lines:
            newlines = chunk.count(b"\n")
            if newlines < skip_lines:
                skip_lines -= newlines
                continue
            at = -1
            for _ in range(skip_lines):
                at = chunk.index(b"\n", at + 1)
            chunk, skip_lines = chunk[at + 1:], 0
            if not chunk:
                continue
        yield chunk


def _lines(stream: BinaryIO, skip_lines: int = 0) -> Iterator[bytes | object]:
    """Yield lines without their line ending (LF or CRLF), read in chunks so a line may be longer
    than any buffer; a UTF-8 BOM at the start is dropped; the last line may lack a newline.
    The first `skip_lines` lines are skipped unread."""
    pending = b""
    discarding = False  # inside a line already longer than MAX_LINE_BYTES
    first = not skip_lines
    for chunk in _chunks(stream, skip_lines):
        if first:
            chunk = chunk[3:] if chunk.startswith(b"\xef\xbb\xbf") else chunk
            first = False
        parts = chunk.split(b"\n")
        tail = parts.pop()
        for part in parts:
            if discarding:
                discarding = False
                pending = b""
                yield TOO_LONG
                continue
            line = pending + part if pending else part
            pending = b""
            yield line[:-1] if line.endswith(b"\r") else line
        if discarding:
            continue
        pending = pending + tail if pending else tail
        if len(pending) > MAX_LINE_BYTES:
            discarding, pending = True, b""
    if discarding:
        yield TOO_LONG
    elif pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


def count_lines(item: InputFile) -> int:
    """Lines of a text file as the readers number them (the last may lack its newline), rows of a
    parquet file: what the shard plan cuts a big file by."""
    if item.format == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(item.path).metadata.num_rows
    stream, _ = _open_stream(item)
    lines, last = 0, b"\n"
    try:
        for chunk in _chunks(stream):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    finally:
        stream.close()
    return lines + (last != b"\n")


def _get_field(obj: object, path: list[str]) -> object:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            raise KeyError(key)
        obj = obj[key]
    return obj
def _to_text(value: object) -> tuple[str, int]:
    if isinstance(value, str):
        return value, OK
    if value is None:
        return "", FIELD_NULL
    return "", FIELD_NOT_STRING


class RecordReader:
    """Reads one input file into RawWindows of at most `window_records` records, starting after
    its first `skip_lines` lines (rows, for parquet): the committed part of a resumed run."""

    def __init__(self, item: InputFile, field: str, id_field: str | None, window_records: int,
                 skip_lines: int = 0) -> None:
        self.item = item
        self.field_path = field.split(".")
        self.id_path = id_field.split(".") if id_field else None
        self.window_records = window_records
        # A resume skips its committed lines, a shard the lines before its range: whichever is further.
        self.skip_lines = max(skip_lines, item.first_line)
        self.max_lines = None if item.end_line is None else max(item.end_line - self.skip_lines, 0)
        self.damage: DamagedInput | None = None  # set when the file stopped early

    def windows(self) -> Iterator[RawWindow]:
        if self.item.format == "parquet":
            yield from self._parquet_windows()
        else:
            yield from self._line_windows()

    def _line_windows(self) -> Iterator[RawWindow]:
        if use_native_reader():
            yield from self._native_windows()
            return
        stream, counter = _open_stream(self.item)
        jsonl = self.item.format == "jsonl"
        texts: list[str] = []
        ids: list[object] = []
        lines: list[int] = []
        status: list[int] = []
        line_no = self.skip_lines
        end_line = self.item.end_line
        try:
            for raw in _lines(stream, self.skip_lines):
                if end_line is not None and line_no >= end_line:
                    break
                line_no += 1
                # A full window goes out when the next record arrives, so the one that ends the
                # file is known to be the last (a resume then skips a finished file unread).
                if len(texts) >= self.window_records and (raw is TOO_LONG or not jsonl or raw.strip()):
                    yield RawWindow(texts, ids, np.asarray(lines, np.int64), np.asarray(status, np.uint8),
                                    counter.consumed)
                    texts, ids, lines, status = [], [], [], []
                if raw is TOO_LONG:
                    text, ident, st = "", None, LINE_TOO_LONG
                elif jsonl:
                    if not raw.strip():
                        continue  # blank lines in JSONL are not records
                    text, ident, st = self._parse_json(raw)
                else:
                    ident = None
                    try:
                        text, st = raw.decode("utf-8"), OK
                    except UnicodeDecodeError:
                        text, st = "", INVALID_UTF8
                texts.append(text)
                ids.append(ident)
                lines.append(line_no)
                status.append(st)
        except _ChunkError as exc:
            self.damage = DamagedInput(str(self.item.path), line_no, exc.args[0])
            log.error("%s", self.damage)
        finally:
            stream.close()
        if texts:
            yield RawWindow(texts, ids, np.asarray(lines, np.int64), np.asarray(status, np.uint8), counter.consumed,
                            True, self.damage)

    def _native_windows(self) -> Iterator[RawWindow]:
        from ignite._engine import NativeReader

        reader = NativeReader(str(self.item.path), self.item.compression or "none", self.item.format,
                              ".".join(self.field_path), ".".join(self.id_path) if self.id_path else None,
                              self.window_records, self.skip_lines, READ_CHUNK, MAX_LINE_BYTES, self.max_lines)
        while (got := reader.next_window()) is not None:
            text_bytes, text_offsets, ids, lines, codes, end_offset, last, damage = got
            if damage is not None:
                self.damage = DamagedInput(str(self.item.path), *damage)
                log.error("%s", self.damage)
            # The native reader's codes are the table's first ones (rows/status.py).
            yield RawWindow(ArenaTexts(text_bytes, text_offsets), ids, lines, codes, end_offset,
                            last, self.damage, text_bytes, text_offsets)
        if reader.damage is not None and self.damage is None:
            self.damage = DamagedInput(str(self.item.path), *reader.damage)
            log.error("%s", self.damage)

    def _parse_json(self, raw: bytes) -> tuple[str, object, int]:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return "", None, INVALID_UTF8
            return "", None, BAD_JSON
        if not isinstance(obj, dict):
            return "", None, NOT_AN_OBJECT
        ident = None
        if self.id_path is not None:
            try:
                ident = _get_field(obj, self.id_path)
            except KeyError:
                return "", None, MISSING_ID
            ident = ident if isinstance(ident, str) else orjson.dumps(ident).decode()
        try:
            value = _get_field(obj, self.field_path)
        except KeyError:
            return "", ident, MISSING_FIELD
        text, st = _to_text(value)
        return text, ident, st

    def _parquet_windows(self) -> Iterator[RawWindow]:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        from ignite.errors import InputError

        try:
            pfile = pq.ParquetFile(self.item.path)
        except Exception as exc:
            raise InputError(f"{self.item.path}: not a readable parquet file ({exc})") from None
        names = pfile.schema_arrow.names
        columns = [self.field_path[0]] + ([self.id_path[0]] if self.id_path else [])
        for col in columns:
            if col not in names:
                raise InputError(f"{self.item.path}: no column {col!r} (columns: {', '.join(names)}); "
                                 f"choose one with --field / --id-field")
        meta = pfile.metadata
        total = max(meta.num_rows, 1)
        end = meta.num_rows if self.max_lines is None else min(meta.num_rows, self.skip_lines + self.max_lines)
        # Resume: start at the row group holding the first row not yet committed.
        first_group, row = 0, 0
        while first_group < meta.num_row_groups and row + meta.row_group(first_group).num_rows <= self.skip_lines:
            row += meta.row_group(first_group).num_rows
            first_group += 1
        drop = self.skip_lines - row
        row = self.skip_lines
        for batch in pfile.iter_batches(batch_size=self.window_records, columns=sorted(set(columns)),
                                        row_groups=range(first_group, meta.num_row_groups)):
            if drop:
                batch, drop = batch.slice(min(drop, len(batch))), max(drop - len(batch), 0)
                if not len(batch):
                    continue
            if row + len(batch) > end:
                batch = batch.slice(0, max(end - row, 0))
                if not len(batch):
                    break

            def column(path: list[str]):  # type: ignore[no-untyped-def]
                arr = batch.column(batch.schema.get_field_index(path[0]))
                for key in path[1:]:
                    arr = pc.struct_field(arr, key)
                return arr

            values = column(self.field_path).to_pylist()
            texts: list[str] = []
            status: list[int] = []
            for value in values:
                text, st = _to_text(value)
                texts.append(text)
                status.append(st)
            ids: list[object] = [None] * len(values)
            if self.id_path:
                ids = [v if isinstance(v, str) or v is None else str(v) for v in column(self.id_path).to_pylist()]
            lines = np.arange(row + 1, row + 1 + len(values), dtype=np.int64)
            row += len(values)
            yield RawWindow(texts, ids, lines, np.asarray(status, np.uint8), int(self.item.size * row / total),
                            row >= end)
            if row >= end:
                break
