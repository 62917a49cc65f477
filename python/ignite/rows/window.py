"""A window: a run of consecutive records, the unit that moves between stages and is committed
to the outputs as a whole. The Python stages make windows of one input file; the native ingest
pipeline's windows span files (each record keeps its file in `files`)."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ignite.rows.status import OK


def utf8_arena(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """`texts` as the native code holds them: their UTF-8 back to back (uint8) and n+1 int64 byte
    offsets."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(b) for b in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets


class ArenaIds(Sequence[object]):
    """Record ids kept as one UTF-8 arena (uint8), int64 offsets (n+1) and has_id flags (uint8;
    0: None); a str is made only when one is indexed, and `arrow` hands them to pyarrow whole."""

    __slots__ = ("_bytes", "_offsets", "_has_id")

    def __init__(self, id_bytes: np.ndarray, id_offsets: np.ndarray, has_id: np.ndarray) -> None:
        self._bytes, self._offsets, self._has_id = id_bytes, id_offsets, has_id

    def __len__(self) -> int:
        return len(self._has_id)

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not self._has_id[i]:
            return None
        return self._bytes[self._offsets[i]:self._offsets[i + 1]].tobytes().decode("utf-8")

    @classmethod
    def of(cls, ids: Sequence[str | None]) -> ArenaIds:
        """Ids held as str (or None), as an arena."""
        data, offsets = utf8_arena(["" if i is None else i for i in ids])
        return cls(data, offsets, np.array([i is not None for i in ids], np.uint8))

    def slice(self, lo: int, hi: int) -> ArenaIds:
        """Ids lo..hi, copied."""
        start = self._offsets[lo]
        return ArenaIds(self._bytes[start:self._offsets[hi]].copy(), self._offsets[lo:hi + 1] - start,
                        self._has_id[lo:hi].copy())

    @classmethod
    def concat(cls, parts: Sequence[ArenaIds]) -> ArenaIds:
        offsets = np.zeros(sum(len(p) for p in parts) + 1, np.int64)
        at, base = 1, 0
        for p in parts:
            offsets[at:at + len(p)] = p._offsets[1:] - p._offsets[0] + base
            at += len(p)
            base += int(p._offsets[-1] - p._offsets[0])
        return cls(np.concatenate([p._bytes[p._offsets[0]:p._offsets[-1]] for p in parts]), offsets,
                   np.concatenate([p._has_id for p in parts]))

    def arrow(self, lo: int, hi: int):  # type: ignore[no-untyped-def]
        """Ids lo..hi as a pyarrow string array, built from the arena without a str per record."""
        import pyarrow as pa

        n = hi - lo
        valid = np.packbits(self._has_id[lo:hi].astype(bool), bitorder="little")
        offsets = self._offsets[lo:hi + 1] - self._offsets[lo]
        data = self._bytes[self._offsets[lo]:self._offsets[hi]]
        nulls = n - int(np.count_nonzero(self._has_id[lo:hi]))
        if len(data) < 1 << 31:  # string offsets are int32: built as such, not cast (a copy and a pass)
            return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data),
                                               pa.py_buffer(valid), nulls)
        return pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data), pa.py_buffer(valid),
                                                nulls).cast(pa.string())


class ArenaTexts(Sequence[str]):
    """The texts of a window read natively, kept as one UTF-8 arena (uint8) with int64 offsets
    (n+1) and decoded only when indexed; a record without text has an empty span, so reads ""."""

    __slots__ = ("_view", "_offsets")

    def __init__(self, text_bytes: np.ndarray, text_offsets: np.ndarray) -> None:
        self._view = memoryview(text_bytes)
        self._offsets = text_offsets.tolist()

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i):  # type: ignore[no-untyped-def, override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("text index out of range")
        return str(self._view[self._offsets[i]:self._offsets[i + 1]], "utf-8")

    def __iter__(self) -> Iterator[str]:
        view, offsets = self._view, self._offsets
        return (str(view[a:b], "utf-8") for a, b in zip(offsets, offsets[1:]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    def __repr__(self) -> str:
        return f"ArenaTexts({list(self)!r})"


@dataclass
class Window:
    index: int  # 0, 1, 2, ... in input order
    start_row: int  # output row of its first record
    file_index: int
    texts: Sequence[str]  # "" where the record could not be read; ArenaTexts when read natively
    ids: list[object]
    lines: np.ndarray  # int64, 1-based line (or row) in the source file
    status: np.ndarray  # uint8 status codes (rows/status.py): OK, or why the record has no embedding
    end_offset: int  # bytes of the source file consumed at the window's end
    # The texts' UTF-8 in one arena, when the reader keeps it: record i is
    # text_bytes[text_offsets[i]:text_offsets[i+1]]; the native tokenizer reads it without str objects.
    text_bytes: np.ndarray | None = None  # uint8
    text_offsets: np.ndarray | None = None  # int64, len n+1
    # Filled by the tokenizer stage.
    token_ids: np.ndarray | None = None  # flat int32
    token_offsets: np.ndarray | None = None  # int64, len n+1
    n_batches: int = 0
    # Filled by the workers.
    embeddings: np.ndarray | None = None
    batches_done: int = 0
    padded_tokens: int = 0
    real_tokens: int = 0
    extra: dict[str, object] = field(default_factory=dict)
    # Windows that span files (the native pipeline): int32 input file of each record, and the
    # input position once committed: (file, its last line here, its records here, file done).
    files: np.ndarray | None = None
    end: tuple[int, int, int, bool] | None = None

    def __len__(self) -> int:
        return len(self.lines)

    def file_of(self, i: int) -> int:
        """The input file (index) of record i."""
        return self.file_index if self.files is None else int(self.files[i])

    @property
    def ok_rows(self) -> np.ndarray:
        return np.flatnonzero(self.status == OK).astype(np.int64, copy=False)

