"""The torch backend's CUDA executor: the model's forward pass at every padded width the batcher
makes, captured as CUDA graphs at start-up and replayed one after another on one compute stream.

- One memory pool (`torch.cuda.graph_pool_handle()`) for all the graphs: their temporaries
  overlap, which is safe because replays never run concurrently (one compute stream, one lock
  around each batch's enqueue), and each graph keeps its output tensor, so no graph's output is
  ever another's scratch space. The pool is as big as the largest graph's needs, not their sum.
- One flat static input buffer (ids and mask) serves every graph as a [rows, width] view.
- Each worker thread (the pipeline runs `slots` of them per GPU) has a slot: a stream of its own,
  pinned host buffers and device staging, so its host-to-device copy of batch N+1 overlaps the
  compute of batch N, and it sleeps on an event while the GPU works.
- The capture at start-up runs a full-size batch at the run's --max-length: a GPU short of memory
  fails then, not mid-run.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def graph_widths(max_length: int, pad_multiple: int) -> list[int]:
    """The padded widths the batcher can make for this max length: multiples of pad_multiple and
    max_length itself (widths are never padded past it)."""
    widths = list(range(pad_multiple, max_length + 1, pad_multiple))
    return widths if widths and widths[-1] == max_length else widths + [max_length]


class _Slot:
    """One worker thread's stream, pinned host buffers and device staging."""

    def __init__(self, torch: Any, device: str, tokens: int, rows: int, dim: int) -> None:
        self.stream = torch.cuda.Stream(device=device)
        self.ids_host = torch.empty(tokens, dtype=torch.int32, pin_memory=True)
        self.mask_host = torch.empty(tokens, dtype=torch.int32, pin_memory=True)
        self.out_host = torch.empty((rows, dim), dtype=torch.float32, pin_memory=True)
        self.ids = torch.empty(tokens, dtype=torch.int32, device=device)
        self.mask = torch.empty(tokens, dtype=torch.int32, device=device)
        self.out = torch.empty((rows, dim), dtype=torch.float32, device=device)
        self.computed = torch.cuda.Event()
        self.done = torch.cuda.Event(blocking=True)  # the host thread sleeps, leaving its core to others
        self.tokens, self.rows = tokens, rows


class CudaExecutor:
    def __init__(self, torch: Any, encoder: Any, device: str, dim: int, widths: Sequence[int], batch_tokens: int,
                 max_rows: int, graphs: bool) -> None:
        self._torch, self._encoder, self._device, self._dim = torch, encoder, device, dim
        self._max_rows = max_rows
        self._tokens = max(batch_tokens, max(widths))
        self._rows_at = {w: max(1, min(max_rows, batch_tokens // w)) for w in widths}
        self._compute = torch.cuda.Stream(device=device)
        self._lock = threading.Lock()  # one batch's copy-in, replay and copy-out stay together on the stream
        self._local = threading.local()
        # Rows past a batch's end keep whatever an earlier batch left; each row is computed on its
        # own (attention, norms and pooling never mix rows) and only the batch's rows are read back.
        self._ids = torch.zeros(self._tokens, dtype=torch.int32, device=device)
        self._mask = torch.ones(self._tokens, dtype=torch.int32, device=device)
        self._graphs: dict[int, tuple[Any, Any]] = {}  # width -> (graph, its static output)
        # The buffers above were written on the default stream; everything from here runs on ours.
        self._compute.wait_stream(torch.cuda.current_stream(device))
        if graphs:
            self._capture(widths)
        else:  # still a full-size batch at the longest width now, so memory runs out at start-up
            rows = self._rows_at[max(widths)]
            self.run(np.ones((rows, max(widths)), np.int32), np.ones((rows, max(widths)), np.int32))

    def _inputs(self, rows: int, width: int) -> tuple[Any, Any]:
        n = rows * width
        return self._ids[:n].view(rows, width), self._mask[:n].view(rows, width)

    def _capture(self, widths: Sequence[int]) -> None:
        torch = self._torch
        pool = torch.cuda.graph_pool_handle()
        # Longest first: its graph needs the most scratch, so the pool reaches its size at once.
        for width in sorted(widths, reverse=True):
            ids, mask = self._inputs(self._rows_at[width], width)
            with torch.cuda.stream(self._compute), torch.inference_mode():
                # A mask with padding, so the warm-up takes the masked attention path the capture
                # records (transformers skips an all-ones mask, but never while capturing).
                mask.fill_(1)
                mask[:, -1] = 0 if width > 1 else 1
                self._encoder(ids, mask)  # lazy initialisation (kernels, workspaces) must not happen in capture
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool, stream=self._compute), torch.inference_mode():
                out = self._encoder(ids, mask)
            self._graphs[width] = (graph, out)
        self._compute.synchronize()
        log.info("captured %d CUDA graphs on %s (widths %d..%d, one memory pool)", len(self._graphs), self._device,
                 min(widths), max(widths))

    def _slot(self, rows: int, tokens: int) -> _Slot:
        slot = getattr(self._local, "slot", None)
        if slot is None or slot.tokens < tokens or slot.rows < rows:  # grows only for an unusual caller
            slot = _Slot(self._torch, self._device, max(tokens, self._tokens), max(rows, self._max_rows), self._dim)
            self._local.slot = slot
        return slot

    @property
    def graph_widths(self) -> list[int]:
        """The widths captured as CUDA graphs (empty when graphs are off)."""
        return sorted(self._graphs)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[rows, width] int32 ids and mask -> [rows, dim] float32; thread-safe, each thread on its slot."""
        torch = self._torch
        rows, width = input_ids.shape
        n = rows * width
        slot = self._slot(rows, n)
        np.copyto(slot.ids_host[:n].numpy().reshape(rows, width), input_ids, casting="unsafe")
        np.copyto(slot.mask_host[:n].numpy().reshape(rows, width), attention_mask, casting="unsafe")
        with torch.cuda.stream(slot.stream):
            slot.ids[:n].copy_(slot.ids_host[:n], non_blocking=True)
            slot.mask[:n].copy_(slot.mask_host[:n], non_blocking=True)
        ids, mask = slot.ids[:n].view(rows, width), slot.mask[:n].view(rows, width)
        graph = self._graphs.get(width)
        with self._lock, torch.cuda.stream(self._compute), torch.inference_mode():
            self._compute.wait_stream(slot.stream)
            if graph is not None and rows <= self._rows_at[width]:
                static_ids, static_mask = self._inputs(self._rows_at[width], width)
                static_ids[:rows].copy_(ids)
                static_mask[:rows].copy_(mask)
                graph[0].replay()
                slot.out[:rows].copy_(graph[1][:rows])
            else:  # a shape no graph has (a caller with another budget): eager, still in stream order
                slot.out[:rows].copy_(self._encoder(ids, mask))
            slot.computed.record(self._compute)
        slot.stream.wait_event(slot.computed)
        with torch.cuda.stream(slot.stream):
            slot.out_host[:rows].copy_(slot.out[:rows], non_blocking=True)
        slot.done.record(slot.stream)
        slot.done.synchronize()
        return slot.out_host[:rows].numpy().copy()
