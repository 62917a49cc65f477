"""Progress on stderr: records, records/s, the busiest stage and, from the input bytes consumed,
an ETA. Off when stderr is not a terminal or with --quiet."""
from __future__ import annotations

import sys
import time
from typing import Callable


class Progress:
    def __init__(self, total_bytes: int, enabled: bool = True, live: Callable[[], str] | None = None) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._start = time.perf_counter()
        self._live = live
        self._bar = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=max(total_bytes, 1), unit="B", unit_scale=True, file=sys.stderr,
                             bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]", desc="embed")

    def update(self, records: int, bytes_done: int) -> None:
        if self._bar is None:
            return
        rate = records / max(time.perf_counter() - self._start, 1e-9)
        self._bar.n = bytes_done
        busiest = self._live() if self._live is not None else ""
        self._bar.set_postfix_str(f"{records:,} records, {rate:,.0f} rec/s{', ' + busiest if busiest else ''}",
                                  refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
