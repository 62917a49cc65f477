"""Type stubs for the native module ignite._engine (built from csrc/ by CMake)."""

import numpy as np
from typing import Callable, TypedDict

class EngineError(RuntimeError):
    """Base of the errors raised by the native engine."""

class InvalidArgument(EngineError, ValueError): ...
class NotFound(EngineError, FileNotFoundError): ...
class IoError(EngineError, OSError): ...
class Cancelled(EngineError): ...

class RingClosed(Exception):
    """Pushing to a closed ring, or popping from one that is closed and drained."""

class Ring:
    """Bounded lock-free MPMC ring of integer handles; blocking calls release the GIL."""

    def __init__(self, capacity: int) -> None:
        """Capacity is rounded up to a power of two (at least 2); InvalidArgument if 0 or > 2**30."""
    def push(self, item: int, timeout: float | None = None) -> bool:
        """Queue `item`, waiting up to `timeout` seconds (None: no limit). False on timeout."""
    def pop(self, timeout: float | None = None) -> int | None:
        """Next item, waiting up to `timeout` seconds. None on timeout; RingClosed once closed and drained."""
    def try_push(self, item: int) -> bool: ...
    def try_pop(self) -> int | None: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    @property
    def capacity(self) -> int: ...
    @property
    def closed(self) -> bool: ...

class FileWriter:
    """Appends byte ranges to an open file descriptor on native threads (pwrite at each range's
    offset, never taking the GIL; tickets complete in order); whole blocks bypass the page cache
    (O_DIRECT) where the file system allows (`direct`), and the rest leaves it two writes behind."""
    def __init__(self, fd: int, threads: int = 2, direct: bool = True) -> None: ...
    def submit(self, data: np.ndarray | bytes, offset: int) -> int:
        """Queue a C-contiguous buffer (kept alive until written); its ticket. OSError if a write failed."""
    def wait(self, ticket: int) -> None:
        """Until `ticket` is written (GIL released); OSError (with errno) if a write failed."""
    @property
    def cpu_seconds(self) -> float: ...
    @property
    def direct(self) -> bool:
        """Whether whole blocks still go out with O_DIRECT (false where refused)."""
    def close(self) -> None:
        """Wait for every queued range and stop the thread; never raises."""

class BuildInfo(TypedDict):
    cuda: bool
    tensorrt: bool
    reader: bool
    image: bool
    version: str
    compiler: str

def build_info() -> BuildInfo: ...

class CudaDriverError(EngineError):
    """The CUDA driver is installed but a call to it failed."""

class CudaDevice(TypedDict):
    index: int
    name: str
    total_memory: int
    sm: tuple[int, int]

class CudaDevices(TypedDict):
    library: str
    driver_version: int
    devices: list[CudaDevice]
    note: str

def cuda_devices() -> CudaDevices:
    """The CUDA driver's devices, asked through dlopen (no driver: an empty list and a note)."""
def cuda_device_count() -> int: ...


def plan_batches(lengths: np.ndarray, budget: int, pad_multiple: int = 1, max_rows: int = 1024, max_width: int = 0
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, bounds, widths), int64: batch i is order[bounds[i]:bounds[i+1]] padded to widths[i];
    rows x width <= budget (a longer record alone); equal lengths keep input order; max_width > 0:
    no padding past it. GIL released."""
def fill_batch(token_ids: np.ndarray, offsets: np.ndarray, rows: np.ndarray, width: int, pad_id: int,
               ids: np.ndarray, mask: np.ndarray) -> int:
    """Write [len(rows), width] ids and 0/1 mask into the C-contiguous int32 arrays `ids` and `mask`
    (never copied: another dtype or layout is a TypeError); returns the real token count."""


class WordPieceTokenizer:
    """Exact BERT WordPiece pipeline loaded from tokenizer.json; encode_batch releases the GIL."""

    unicode_version: str
    max_length: int
    pad_id: int
    unk_id: int
    vocab_size: int
    special_tokens_added: int
    def __init__(self, path: str, max_length: int) -> None: ...
    def encode_batch(
        self, texts: list[str], prefix: str = "", threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(flat int32 ids, int64 offsets n+1, int64 lengths before truncation, bool uncertain)."""
    def encode_arena(
        self, text_bytes: np.ndarray, text_offsets: np.ndarray, rows: np.ndarray | None = None, prefix: str = "",
        threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """encode_batch of texts read in place from a uint8 UTF-8 arena (text r is
        text_bytes[text_offsets[r]:text_offsets[r+1]]), for `rows` (None: all), in their order."""
    def words(self, text: str) -> list[str]: ...
    def checkable_code_points(self) -> np.ndarray: ...
    def trust(self, code_points: list[int]) -> None: ...



# Present only when the module was built with zstd, zlib and simdjson (build_info()["reader"]).

READER_class NativeBackend:
    """A model IngestPipeline.run_native calls from native threads, with no Python per batch."""

    dim: int

class NullBackend(NativeBackend):
    """Zeros of its dim. `fail_token` (a test aid): a batch holding that token id raises."""

    def __init__(self, dim: int, fail_token: int | None = None) -> None: ...


STATUS_NAMES: tuple[str, ...]
"""Status names by code: ok, invalid_utf8, bad_json, not_an_object, missing_id, missing_field,
field_null, field_not_string, line_too_long."""

class NativeReader:
    """Windows of records of one JSONL or text file (plain, zstd or gzip), read with the GIL
    released; the same records, statuses, line numbers, end offsets and damage as the Python reader."""

    def __init__(self, path: str, compression: str, format: str, field: str, id_field: str | None,
                 window_records: int, skip_lines: int = 0, read_chunk: int = 1 << 20,
                 max_line_bytes: int = 64 << 20, max_lines: int | None = None) -> None:
        """compression: none | zstd | gzip; format: jsonl | txt; field, id_field: dotted paths.
        Reads lines skip_lines+1 .. skip_lines+max_lines (max_lines None: to the end of the file).
        NotFound / IoError when the file cannot be opened."""
    def next_window(
        self,
    ) -> tuple[np.ndarray, np.ndarray, list[str | None], np.ndarray, np.ndarray, int, bool, tuple[int, str] | None] | None:
        """(text_bytes uint8, text_offsets int64 n+1, ids, lines int64, status uint8 codes, end_offset,
        last, damage (line, reason) | None), or None when no record is left."""
    @property
    def damage(self) -> tuple[int, str] | None:
        """(line, reason) once the file stopped early at damaged bytes, else None."""

# Present only when the module was built with TensorRT and CUDA (build_info()["tensorrt"]).

class CudaError(EngineError):
    """A CUDA runtime call failed; the message names the call, file:line and CUDA's text."""

class TensorRTError(EngineError):
    """A TensorRT call failed; the message carries TensorRT's own errors."""

def tensorrt_version() -> int:
    """Version of the TensorRT library loaded (major * 10000 + minor * 100 + patch)."""
def cuda_device_count() -> int:
    """CUDA devices this process sees (0 when none); CudaError when the driver cannot be used."""

class TrtSession:
    """A TensorRT engine for one ONNX graph on one GPU, cached on disk, several batches in flight."""

    dim: int
    engine_path: str
    precision: str
    built: bool
    slots: int
    device: int
    profiles: list[tuple[int, int, int, int]]
    """Per sequence bucket: (min_seq, max_seq, opt_rows, max_rows)."""
    def __init__(self, onnx_path: str, cache_dir: str, device: int, precision: str, max_batch_tokens: int,
                 max_seq: int, buckets: list[int], *, max_rows: int = 1024, slots: int = 2, opt_level: int = 3,
                 timing_cache: bool = True, workspace_mb: int = 0, strongly_typed: bool = False) -> None: ...
    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """[rows, seq] int32 ids and mask -> [rows, dim] float32; thread-safe, GIL released."""
    def submit(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> int:
        """Queue a batch on a free slot (waiting for one); returns the slot for wait()."""
    def wait(self, slot: int) -> np.ndarray:
        """The [rows, dim] float32 output of the batch on `slot`; frees the slot."""
    def native_backend(self) -> NativeBackend:
        """This session as a NativeBackend for IngestPipeline.run_native; keeps the session alive."""


STATUS_NAMES: tuple[str, ...]
"""Record status names by uint8 code: READER_STATUS_NAMES, then backend_error (native reader builds)."""

class IngestBatch:
    """Rows of one window, padded; views of pooled buffers, lent back once the batch and its arrays
    are gone. Python may set attributes on it (the pipeline sets `tried`)."""

    input_ids: np.ndarray  # int32 [rows, width]
    attention_mask: np.ndarray  # int32 [rows, width]
    rows: np.ndarray  # int64 rows of the window
    window: int
    real_tokens: int
    def __len__(self) -> int: ...

class IngestWindow:
    """A complete window, in input order, spanning files; its arrays are views of native buffers."""

    index: int
    start_row: int
    embeddings: np.ndarray  # float32 [n, dim]
    files: np.ndarray  # int32
    lines: np.ndarray  # int64
    status: np.ndarray  # uint8 codes (STATUS_NAMES)
    id_bytes: np.ndarray  # uint8
    id_offsets: np.ndarray  # int64, n+1
    has_id: np.ndarray  # uint8
    end_file: int
    end_line: int
    end_records: int
    end_offset: int
    end_done: bool
    batches: int
    real_tokens: int
    padded_tokens: int
    damage: list[tuple[int, int, str]]
    def __len__(self) -> int: ...

class IngestPipeline:
    """Reader, tokenizer pool and packer in native threads (native reader builds only)."""

    # files: (path, compression, format, index in the run's inputs, size, lines to skip, lines to read or None)
    def __init__(self, files: list[tuple[str, str, str, int, int, int, int | None]], tokenizer: WordPieceTokenizer,
                 dim: int,
                 field: str = "text", id_field: str | None = None, window_records: int = 65536,
                 budget: int = 65536, max_rows: int = 1024, max_width: int = 0, pad_multiple: int = 1,
                 prefix: str = "", tokenizer_threads: int = 1, packer_threads: int = 1, first_window: int = 0,
                 first_row: int = 0, windows_in_flight: int = 8, batch_ring: int = 16,
                 retokenize: Callable[[list[str]], tuple[np.ndarray, np.ndarray]] | None = None,
                 read_chunk: int = 1 << 20, max_line_bytes: int = 64 << 20) -> None: ...
    def next_batch(self, timeout: float = 0.1) -> IngestBatch | None: ...
    def complete(self, batch: IngestBatch, embeddings: np.ndarray, failed: np.ndarray | None = None) -> None: ...
    def run_native(self, backend: NativeBackend,
                   timeout: float = 0.1) -> tuple[IngestBatch | None, str, int, int, float]:
        """Batches run on `backend` without the GIL until one fails, `timeout` passes or none is left:
        (the failed batch, not completed, or None; its error; batches; records; seconds in the backend)."""
    def next_committable_window(self, timeout: float = 0.1) -> IngestWindow | None: ...
    def stop(self) -> None: ...
    def cancel(self) -> None: ...
    def close(self) -> None: ...
    def cpu_seconds(self) -> dict[str, float]: ...
    @property
    def finished(self) -> bool: ...
    @property
    def batches_finished(self) -> bool: ...
    @property
    def buffers_allocated(self) -> int: ...

class ImagePreprocessor:
    """Decodes (JPEG, PNG, WebP, GIF's first frame, BMP) and preprocesses images as
    CLIPImageProcessor (PIL) does, on a persistent pool of threads (image decoder builds only)."""

    def __init__(self, shortest_edge: int, crop_height: int, crop_width: int, rescale_factor: float,
                 mean: tuple[float, float, float], std: tuple[float, float, float], do_resize: bool = True,
                 do_center_crop: bool = True, do_rescale: bool = True, do_normalize: bool = True,
                 threads: int = 0, mode: str = "exact", max_pixels: int = 89478485) -> None: ...
    def process(self, items: list[bytes | bytearray | memoryview | np.ndarray], out: np.ndarray) -> np.ndarray:
        """Fills out (C-contiguous float32 (n, 3, crop_height, crop_width)) with the GIL released; uint8
        statuses: 0 ok, 1 bad_image, 2 unsupported_image, 3 image_too_large (zeros in out)."""
    @property
    def threads(self) -> int: ...
