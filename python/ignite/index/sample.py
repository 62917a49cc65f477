"""A uniform sample of the input's readable texts, drawn while the index's pre-pass reads it:
Algorithm R (every readable record kept with probability size/seen), with the draws and the
copies done per window with NumPy, so the pass costs no Python per record. The kept texts stay
UTF-8 bytes until the few that get embedded are asked for."""
from __future__ import annotations

import numpy as np

COMPACT_BYTES = 64 << 20  # an arena chunk list this much over the live texts is copied down


class Reservoir:
    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.seen = 0  # readable records so far
        self.total = 0  # all records (output rows) so far
        self.rows = np.zeros(0, np.int64)  # output row of each kept text, by slot
        # Slot i's text: chunks[chunk[i]][start[i] : start[i] + length[i]].
        self._chunks: list[np.ndarray] = []
        self._chunk = np.zeros(0, np.int64)
        self._start = np.zeros(0, np.int64)
        self._length = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, text_bytes: np.ndarray, offsets: np.ndarray, ok: np.ndarray) -> None:
        """One window: its texts as a UTF-8 arena (uint8) with n+1 offsets, and which of its n
        records are readable."""
        offsets = np.asarray(offsets, np.int64)
        readable = np.flatnonzero(ok)
        fill = min(len(readable), self.size - len(self.rows))
        slots = np.arange(len(self.rows), len(self.rows) + fill)
        picks = readable[:fill]
        rest = readable[fill:]
        if len(rest):
            # Record number j (0-based among readable ones) replaces slot r ~ U[0, j] when r < size.
            j = self.seen + fill + np.arange(len(rest))
            r = (self.rng.random(len(rest)) * (j + 1)).astype(np.int64)
            taken = r < self.size
            r, replacing = r[taken], rest[taken]
            # Within one window a later record overwrites an earlier one in the same slot.
            last = len(r) - 1 - np.unique(r[::-1], return_index=True)[1]
            slots, picks = np.concatenate([slots, r[last]]), np.concatenate([picks, replacing[last]])
        self.seen += len(readable)
        if len(picks):
            self._keep(slots, picks, text_bytes, offsets)
        self.total += len(offsets) - 1

    def _keep(self, slots: np.ndarray, picks: np.ndarray, text_bytes: np.ndarray, offsets: np.ndarray) -> None:
        starts, lengths = offsets[picks], offsets[picks + 1] - offsets[picks]
        text_bytes = np.asarray(text_bytes, np.uint8)
        if 2 * int(lengths.sum()) > len(text_bytes):  # most of the window (the sample filling up): keep it as is
            chunk = text_bytes
        else:  # a few records: copy them out, so the window's arena can go
            gather, starts, lengths = _spans(starts, lengths)
            chunk = text_bytes[gather]
        grow = int(slots.max()) + 1 - len(self.rows)
        if grow > 0:
            self.rows, self._chunk, self._start, self._length = (
                np.concatenate([a, np.zeros(grow, np.int64)]) for a in (self.rows, self._chunk, self._start, self._length))
        self.rows[slots] = self.total + picks
        self._chunk[slots] = len(self._chunks)
        self._start[slots] = starts
        self._length[slots] = lengths
        self._chunks.append(chunk)
        if sum(len(c) for c in self._chunks) > 2 * int(self._length.sum()) + COMPACT_BYTES:
            self._compact()

    def _compact(self) -> None:
        """The live texts copied into one chunk: replaced ones stop holding memory."""
        bases = np.cumsum([0] + [len(c) for c in self._chunks[:-1]])
        gather, self._start, _ = _spans(bases[self._chunk] + self._start, self._length)
        self._chunks = [np.concatenate(self._chunks)[gather]]
        self._chunk[:] = 0

    def text_bytes(self, slot: int) -> bytes:
        start = int(self._start[slot])
        return self._chunks[int(self._chunk[slot])][start:start + int(self._length[slot])].tobytes()

    def texts(self, slots: np.ndarray) -> list[str]:
        """The kept texts of `slots` (positions in the sample), decoded."""
        return [self.text_bytes(int(i)).decode("utf-8") for i in slots]


def _spans(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The byte positions of the spans (starts, lengths) laid back to back, and each span's start
    and length there."""
    ends = np.cumsum(lengths)
    packed = ends - lengths
    return np.repeat(starts - packed, lengths) + np.arange(int(ends[-1]) if len(ends) else 0), packed, lengths
