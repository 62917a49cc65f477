"""Record statuses: OK, or why a record has no embedding (its row is zeros). A window keeps them
as uint8 codes (Window.status), so counting and selecting them is NumPy work, never a Python loop
per record; they are written out by name (the ids' status column, the --errors file, the
manifest's counts). Codes 0..9 are the native engine's (ignite._engine.STATUS_NAMES: the native
reader's READER_STATUS_NAMES, then backend_error), so its arrays are used as they come; the image
statuses follow them."""
from __future__ import annotations

import numpy as np

# The one table: a status's code is its place here.
STATUS_NAMES: tuple[str, ...] = (
    "ok", "invalid_utf8", "bad_json", "not_an_object", "missing_id", "missing_field", "field_null",
    "field_not_string", "line_too_long",  # the reader could not read the record
    "backend_error",  # the backend failed on the record on its own
    "bad_image",  # not decodable: truncated, zero bytes, not an image
    "unsupported_image",  # an image in a format or mode Ignite does not decode
    "image_too_large",  # more pixels than --max-image-pixels
    "missing_image",  # a table names an image file that cannot be read
)
(OK, INVALID_UTF8, BAD_JSON, NOT_AN_OBJECT, MISSING_ID, MISSING_FIELD, FIELD_NULL, FIELD_NOT_STRING, LINE_TOO_LONG,
 BACKEND_ERROR, BAD_IMAGE, UNSUPPORTED_IMAGE, IMAGE_TOO_LARGE, MISSING_IMAGE) = range(len(STATUS_NAMES))

_NAMES = np.array(STATUS_NAMES, dtype=object)


def status_names(codes: np.ndarray) -> np.ndarray:
    """The names of uint8 status codes, as an object array of str (one lookup in C)."""
    return _NAMES[codes]
