"""Row metadata held per commit: the tables logged from many small windows equal the tables built
from each window alone, ids (with missing ones) and files survive slicing and joining, and rows
not yet synced are not in the log."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from ignite.io import metadata
from ignite.io.metadata import MetaLog, MetaRows, read_meta_log
from ignite.rows.status import STATUS_NAMES
from ignite.rows.window import ArenaIds, Window

FILES = ["a.jsonl", "b.jsonl.zst", "c.csv"]


def window(rng: np.random.Generator, start_row: int, n: int, arena: bool) -> Window:
    ids: list[str | None] = [None if rng.random() < 0.1 else f"id-{start_row + i}-é{'x' * int(rng.integers(0, 9))}"
                             for i in range(n)]
    return Window(index=0, start_row=start_row, file_index=1, texts=(),
                  ids=ArenaIds.of(ids) if arena else ids, lines=rng.integers(1, 10**6, n),
                  status=rng.integers(0, len(STATUS_NAMES), n).astype(np.uint8), end_offset=0,
                  files=None if rng.random() < 0.3 else rng.integers(0, len(FILES), n).astype(np.int32))


def expected(w: Window, lo: int, hi: int) -> dict[str, list[object]]:
    return {"row": list(range(w.start_row + lo, w.start_row + hi)), "id": list(w.ids[lo:hi]),
            "file": [FILES[w.file_of(i)] for i in range(lo, hi)], "line": [int(x) for x in w.lines[lo:hi]],
            "status": [STATUS_NAMES[s] for s in w.status[lo:hi]]}


@pytest.mark.parametrize("arena", [True, False])
def test_rows_sliced_and_joined_read_as_the_windows(tmp_path: Path, arena: bool,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metadata, "ROW_GROUP_ROWS", 500)  # several logged tables, one mid-run
    rng = np.random.default_rng(7)
    log = MetaLog(tmp_path / "m.meta", FILES)
    want: dict[str, list[object]] = {k: [] for k in ("row", "id", "file", "line", "status")}
    row = 0
    for _ in range(40):
        w = window(rng, row, int(rng.integers(0, 60)), arena)
        cut = int(rng.integers(0, len(w) + 1))
        for lo, hi in ((0, cut), (cut, len(w))):  # a window split across shards is appended in two
            log.append(MetaRows.of(w, lo, hi, string_ids=True))
            for k, v in expected(w, lo, hi).items():
                want[k] += v
        row += len(w)
    log.sync()
    got = pa.concat_tables(read_meta_log(tmp_path / "m.meta"))
    assert got.schema == metadata.meta_schema(True)
    assert {k: got.column(k).to_pylist() for k in want} == want
    log.close()


def test_held_rows_are_logged_only_at_sync(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    log = MetaLog(tmp_path / "m.meta", FILES)
    log.append(MetaRows.of(window(rng, 0, 30, True), 0, 30, string_ids=False))
    assert log.size == 0
    log.sync()
    first = log.size
    assert first > 0
    log.append(MetaRows.of(window(rng, 30, 30, True), 0, 30, string_ids=False))
    log.close()  # a crash before the commit: the held rows were never committed
    tables = list(read_meta_log(tmp_path / "m.meta"))
    assert (tmp_path / "m.meta").stat().st_size == first
    assert [t.column("id").to_pylist() for t in tables] == [list(range(30))]  # row numbers as ids


def test_arena_ids_slice_and_concat() -> None:
    ids = ["", None, "ünï", "a" * 100, None]
    arena = ArenaIds.of(ids)
    assert list(arena) == ids
    parts = [arena.slice(0, 2), arena.slice(2, 2), arena.slice(2, 5)]
    assert list(ArenaIds.concat(parts)) == ids
    assert ArenaIds.concat(parts).arrow(0, 5).to_pylist() == ids
