"""Encoded images, one record each, read from one input from a resume position: a loose file,
the image members of a WebDataset tar shard (KEY.jpg beside KEY.json/KEY.txt; the key is the id),
or the rows of a Parquet/JSONL table whose image field holds a path (relative to the table's
folder) or the bytes (a binary column, or Hugging Face datasets' {bytes, path} struct). Records
that cannot be read keep their place with a status; a tar whose bytes stop making sense stops
there, as a damaged text archive does (DamagedInput)."""
from __future__ import annotations

import logging
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from ignite.errors import InputError
from ignite.images.inputs import IMAGE_EXTENSIONS
from ignite.io.inputs import InputFile
from ignite.io.readers import DamagedInput, RecordReader
from ignite.rows.status import FIELD_NULL, MISSING_IMAGE, OK

log = logging.getLogger(__name__)

TABLE_WINDOW = 1024  # rows of a table read at a time


@dataclass
class ImageRecord:
    line: int  # 1-based: 1 for a loose file, the image's ordinal among a tar's images, a table's line or row
    ident: str | None
    data: bytes | None  # None when the record has no image (status says why)
    status: int  # a status code (rows/status.py)
    offset: int  # bytes of the input consumed once this record is read


class ImageRecords:
    """The records of one input after its first `skip` (committed) ones; `damage` is set when a
    tar stops early."""

    def __init__(self, item: InputFile, name: str | None, field: str | None, id_field: str | None,
                 skip: int = 0) -> None:
        self.item, self.name, self.field, self.id_field, self.skip = item, name, field, id_field, skip
        self.damage: DamagedInput | None = None

    def __iter__(self) -> Iterator[ImageRecord]:
        fmt = self.item.format
        if fmt == "image":
            yield from self._loose()
        elif fmt == "tar":
            yield from self._tar()
        elif fmt == "parquet":
            yield from self._parquet()
        else:
            yield from self._jsonl()

    def _loose(self) -> Iterator[ImageRecord]:
        try:
            data = self.item.path.read_bytes()
        except OSError as exc:
            log.warning("%s: cannot read (%s)", self.item.path, exc.strerror)
            yield ImageRecord(1, self.name, None, MISSING_IMAGE, self.item.size)
            return
        yield ImageRecord(1, self.name, data, OK, self.item.size)

    def _damaged(self, line: int, reason: str) -> None:
        """The tar stops here; the writer logs the damage when the window carrying it commits."""
        self.damage = DamagedInput(str(self.item.path), line, reason)

    def _tar(self) -> Iterator[ImageRecord]:
        try:
            archive = tarfile.open(self.item.path, "r:")
        except (tarfile.TarError, OSError) as exc:
            self._damaged(0, f"not a readable tar archive ({exc})")
            return
        ordinal = 0
        with archive:
            while True:
                try:
                    member = archive.next()
                except (tarfile.TarError, OSError, EOFError) as exc:
                    self._damaged(ordinal, f"corrupt tar header after image {ordinal} ({exc})")
                    return
                if member is None:
                    break
                name = PurePosixPath(member.name)
                if not member.isfile() or name.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                ordinal += 1
                if ordinal <= self.skip:
                    continue
                end = member.offset_data + member.size
                if end > self.item.size:
                    self._damaged(ordinal - 1, f"cut in member {member.name} ({self.item.size - member.offset_data:,} "
                                               f"of its {member.size:,} bytes)")
                    return
                try:
                    handle = archive.extractfile(member)
                    data = handle.read() if handle is not None else b""
                except (tarfile.TarError, OSError, EOFError) as exc:
                    self._damaged(ordinal - 1, f"cannot read member {member.name} ({exc})")
                    return
                yield ImageRecord(ordinal, str(name.with_suffix("")), data, OK, end)

    def _image_at(self, path: str) -> tuple[bytes | None, int]:
        try:
            return (self.item.path.parent / path).read_bytes(), OK
        except OSError:
            return None, MISSING_IMAGE

    def _jsonl(self) -> Iterator[ImageRecord]:
        assert self.field is not None
        reader = RecordReader(self.item, self.field, self.id_field, TABLE_WINDOW, skip_lines=self.skip)
        for window in reader.windows():
            for i, (text, status) in enumerate(zip(window.texts, window.status.tolist())):
                line, ident = int(window.lines[i]), window.ids[i]
                data = None
                if status == OK:
                    data, status = self._image_at(text)
                yield ImageRecord(line, ident if self.id_field else (text or None), data, status,
                                  window.end_offset)
        if reader.damage is not None:
            self.damage = reader.damage

    def _parquet(self) -> Iterator[ImageRecord]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self.field is not None
        try:
            pfile = pq.ParquetFile(self.item.path)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
            raise InputError(f"{self.item.path}: not a readable parquet file ({exc})") from None
        schema = pfile.schema_arrow
        for col in [self.field] + ([self.id_field] if self.id_field else []):
            if col not in schema.names:
                raise InputError(f"{self.item.path}: no column {col!r} (columns: {', '.join(schema.names)}); "
                                 f"choose one with --image-field / --id-field")
        kind = schema.field(self.field).type
        if not (pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_string(kind)
                or pa.types.is_large_string(kind) or (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0)):
            raise InputError(f"{self.item.path}: column {self.field!r} is {kind}, not image bytes (binary), a path "
                             f"(string) or a {{bytes, path}} struct")
        row, total = 0, max(pfile.metadata.num_rows, 1)
        columns = [self.field] + ([self.id_field] if self.id_field and self.id_field != self.field else [])
        for batch in pfile.iter_batches(batch_size=TABLE_WINDOW, columns=columns):
            values = batch.column(self.field).to_pylist()
            ids = batch.column(self.id_field).to_pylist() if self.id_field else [None] * len(values)
            for value, ident in zip(values, ids):
                row += 1
                if row <= self.skip:
                    continue
                data, status, path = self._cell(value)
                ident = str(ident) if ident is not None else path
                yield ImageRecord(row, ident, data, status, int(self.item.size * row / total))

    def _cell(self, value: object) -> tuple[bytes | None, int, str | None]:
        """(bytes, status, the path named) of a Parquet cell."""
        path = None
        if isinstance(value, dict):
            data, path = value.get("bytes"), value.get("path")
            if data:
                return bytes(data), OK, path
            value = path
        if isinstance(value, bytes):
            return value, OK, None
        if isinstance(value, str):
            data, status = self._image_at(value)
            return data, status, value
        return None, FIELD_NULL, path
