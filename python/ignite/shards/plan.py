"""The shard plan: a pure function of the ordered input list, the file sizes and (for files cut
inside) their line counts, so that every array task computes the same plan on its own.

Shards are contiguous slices of the input in its order, so shard after shard is the global row
order of a single run. Cut points aim at equal bytes (k * total / N); a cut snaps to the nearer
file boundary when that moves it by at most SNAP of a share, so small files stay whole; otherwise
the file holding the cut (one much larger than the tolerance) is cut between lines, at the line
its byte fraction predicts."""
from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ignite.io.inputs import InputFile
from ignite.io.readers import count_lines
from ignite.shards.env import shard_name

SNAP = 1 / 8  # of a share: a shard is then within +-25% of an equal share of bytes


@dataclass(frozen=True)
class Piece:
    """Lines first_line+1 .. first_line+line_count of input `file` (line_count None: to the end)."""

    file: int
    first_line: int
    line_count: int | None
    bytes: int  # estimated from the line fraction for a cut file


@dataclass(frozen=True)
class ShardPlan:
    files: tuple[InputFile, ...]
    shards: tuple[tuple[Piece, ...], ...]
    digest: str  # identifies the plan: equal in every task of one job

    def inputs(self, shard: int) -> list[InputFile]:
        """The input files of `shard`, each limited to its line range."""
        return [replace(self.files[p.file], first_line=p.first_line, line_count=p.line_count)
                for p in self.shards[shard]]

    def to_json(self) -> dict:
        return {"digest": self.digest, "files": [{"path": str(f.path), "size": f.size} for f in self.files],
                "shards": [[{"file": p.file, "first_line": p.first_line, "line_count": p.line_count,
                             "bytes": p.bytes} for p in shard] for shard in self.shards]}


# A cut: (file index, lines of that file before it); (f, 0) is the start of file f.
Cut = tuple[int, int]


def plan_shards(files: list[InputFile], count: int,
                lines_of: Callable[[InputFile], int] = count_lines) -> ShardPlan:
    if count < 1:
        raise ValueError(f"shard count must be at least 1, not {count}")
    starts = [0]
    for f in files:
        starts.append(starts[-1] + f.size)
    total = starts[-1]
    share = total / count
    lines: dict[int, int] = {}

    def cut_at(target: float) -> Cut:
        f = min(bisect.bisect_right(starts, target) - 1, len(files) - 1)
        before, after = target - starts[f], starts[f + 1] - target
        if min(before, after) <= SNAP * share:
            return (f, 0) if before <= after else (f + 1, 0)
        if f not in lines:
            lines[f] = lines_of(files[f])
        line = round(lines[f] * before / files[f].size)
        return (f, line) if 0 < line < lines[f] else ((f, 0) if line <= 0 else (f + 1, 0))

    cuts: list[Cut] = [(0, 0)]
    for k in range(1, count):
        cuts.append(max(cut_at(k * share), cuts[-1]) if files else (0, 0))
    cuts.append((len(files), 0))
    shards = tuple(_pieces(files, lines, lo, hi) for lo, hi in zip(cuts, cuts[1:]))
    return ShardPlan(tuple(files), shards, _digest(files, shards))


def _pieces(files: list[InputFile], lines: dict[int, int], lo: Cut, hi: Cut) -> tuple[Piece, ...]:
    """The pieces from cut `lo` up to cut `hi`."""
    out = []
    for f in range(lo[0], min(hi[0] + 1, len(files))):
        first = lo[1] if f == lo[0] else 0
        end = hi[1] if f == hi[0] else None  # None: to the end of the file
        if end is not None and end <= first:
            continue
        count = None if end is None else end - first
        if first == 0 and count is None:
            size = files[f].size
        else:
            n = lines[f]
            size = round(files[f].size * ((count if count is not None else n - first) / n))
        out.append(Piece(f, first, count, size))
    return tuple(out)


def _digest(files: list[InputFile], shards: tuple[tuple[Piece, ...], ...]) -> str:
    body = {"files": [[str(Path(f.path).resolve()), f.size] for f in files],
            "shards": [[[p.file, p.first_line, p.line_count] for p in s] for s in shards]}
    return hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]


def describe(plan: ShardPlan) -> list[str]:
    """One line per shard for `ignite plan`: its share of bytes and its pieces."""
    out = []
    n = len(plan.shards)
    for i, pieces in enumerate(plan.shards):
        parts = []
        for p in pieces:
            name = str(plan.files[p.file].path)
            if p.first_line == 0 and p.line_count is None:
                parts.append(name)
            else:
                end = "end" if p.line_count is None else str(p.first_line + p.line_count)
                parts.append(f"{name} lines {p.first_line + 1}-{end}")
        size = sum(p.bytes for p in pieces)
        out.append(f"{shard_name(i, n)}  {size:>14,} bytes  {'; '.join(parts) or '(empty)'}")
    return out

