"""The native reader (ignite._engine.NativeReader) against the Python reader, its reference: the
same windows (texts, ids, lines, statuses, end offsets, last flags) and the same damage, on the
shared corpora, on files made to hit every framing, compression and JSON edge, and on seeded
random JSONL."""
from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import zstandard

from ignite.io import readers
from ignite.io.inputs import expand_inputs
from ignite.io.readers import RecordReader
from ignite.rows.status import status_names

from conftest import shared_file

pytestmark = pytest.mark.skipif(not readers.native_reader_available(),
                                reason="ignite._engine was built without the native reader (zstd, zlib, simdjson)")


def _windows(path: Path, reader: str, monkeypatch: pytest.MonkeyPatch, field: str = "text",
             id_field: str | None = None, window: int = 1000, skip: int = 0) -> tuple[list, object]:
    monkeypatch.setenv("IGNITE_READER", reader)
    rr = RecordReader(expand_inputs([str(path)])[0], field, id_field, window, skip_lines=skip)
    out = []
    for w in rr.windows():
        assert (w.text_bytes is not None) == (reader == "native")
        out.append((list(w.texts), list(w.ids), w.lines.tolist(), status_names(w.status).tolist(), w.end_offset, w.last,
                    None if w.damage is None else (w.damage.line, w.damage.reason)))
    return out, None if rr.damage is None else (rr.damage.line, rr.damage.reason)


def assert_same(path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs) -> list:  # type: ignore[no-untyped-def]
    expected = _windows(path, "python", monkeypatch, **kwargs)
    got = _windows(path, "native", monkeypatch, **kwargs)
    if got != expected:  # find the first difference, for a readable failure
        for i, (g, e) in enumerate(zip(got[0], expected[0])):
            for name, a, b in zip(("texts", "ids", "lines", "status", "end_offset", "last", "damage"), g, e):
                if a != b:
                    at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), None) if isinstance(a, list) else None
                    detail = f" first at {at}: {a[at]!r} != {b[at]!r}" if at is not None else f": {a!r} != {b!r}"
                    pytest.fail(f"{path.name} {kwargs}: window {i} {name} differ{detail}")
        assert got == expected, f"{path.name} {kwargs}"
    return expected[0]


# --- the shared corpora ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["passages.jsonl.zst", "multilingual.jsonl.zst"])
def test_shared_corpora(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = shared_file(name)
    windows = assert_same(path, monkeypatch, id_field="id", window=4096)
    assert sum(len(w[0]) for w in windows) > 1000 and windows[-1][5]
    plain = tmp_path / name.removesuffix(".zst")
    plain.write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()))
    assert_same(plain, monkeypatch, id_field="id", window=4096)
    assert_same(plain, monkeypatch, id_field="id", window=4096, skip=1234)


# --- generated edge cases ----------------------------------------------------------------------

EDGE_LINES = [
    b'{"text": "plain", "id": "a"}',
    b'',
    b'   \t ',
    b'\x0b\x0c',
    b'{"text": "crlf", "id": 1}\r',
    b'{"text": "esc \\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\u4e2d \\ud83d\\ude00 \\u0000", "id": -0}',
    b'{"text": "lone \\ud800", "id": 2}',
    b'{"text": "lone low \\udc00"}',
    b'{"text": "high then ascii \\ud800\\u0041"}',
    b'{"text": "raw \xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80 \x7f", "id": 1.5}',
    b'{"text": "bad \xff utf8"}',
    b'{"text": "surrogate bytes \xed\xa0\x80"}',
    b'{"text": "overlong \xc0\xaf"}',
    b'{"text": "ctrl \x01 inside"}',
    b'{"text": "tab \t inside"}',
    b'{"text": "x",}',
    b'{"text": "x"} trailing',
    b'{"text": "x"}\x0c',
    b'["not", "an", "object"]',
    b'"just a string"',
    b'42',
    b'null',
    b'{"id": "only id"}',
    b'{"text": null, "id": null}',
    b'{"text": 12, "id": true}',
    b'{"text": ["a"], "id": false}',
    b'{"text": {"a": 1}, "id": [1, 2.0, "x", null, {"k": "v"}]}',
    b'{"text": "dup1", "text": "dup2", "id": {"b": 1, "a": 2, "b": 3}}',
    b'{"doc": {"body": "nested", "body": "nested last"}, "text": "t", "id": {"x": {"y": "z"}}}',
    b'{"doc": "not an object", "text": "t"}',
    b'{"text": "big ids", "id": 18446744073709551615}',
    b'{"text": "big ids", "id": 18446744073709551616}',
    b'{"text": "big ids", "id": -9223372036854775808}',
    b'{"text": "big ids", "id": -9223372036854775809}',
    b'{"text": "big ids", "id": 123456789012345678901234567890}',
    b'{"text": "big ids", "id": [99999999999999999999999, "12345678901234567890123"]}',
    b'{"text": "floats", "id": [1e16, 1e15, 1e-5, 1e-6, 0.1, -0.0, 1e400]}',
    b'{"text": "floats", "id": [1e16, 1e15, 1e-5, 1e-6, 0.1, -0.0, 5e-324, 1.7976931348623157e308, 1E+2]}',
    b'{"text": "numbers", "id": 01}',
    b'{"text": "numbers", "id": -}',
    b'{"text": "escaped key", "\\u0069d": "via escape"}',
    b'{"text": "ctrl in id", "id": ["\\u0001\\n\\"\\\\/\\u007f\\u2028"]}',
    b'  {"text": "spaces around", "id": "s"}  \t',
    b'{"text": "' + b'[' * 10 + b'"}',
    # Nesting limit of validation (orjson: 1024). Not as ids: orjson.dumps stops at 255 levels.
    b'{"text": "deep", "deep": ' + b'[' * 1023 + b']' * 1023 + b'}',
    b'{"text": "too deep", "deep": ' + b'[' * 1024 + b']' * 1024 + b'}',
    b'{"text": "\\x"}',
    b'{"text": "\\u12"}',
    b'{"text": "' + "€".encode() * 30 + b'", "id": "long-ish"}',
    b'{"text": "' + b'y' * 100 + b'", "id": "long"}',
    b'{"text": "huge ints", "id": [1' + b'0' * 308 + b', -1' + b'0' * 300 + b', 123456789012345678901234e5]}',
    b'{"text": "overflowing int", "id": 1' + b'0' * 400 + b'}',
    b'{"text": "tiny floats", "id": [0.' + b'0' * 400 + b'1, 4.9e-324, 2.4703282292062328e-324]}',
    b'{"text": "last line without newline"}',
]


def edge_payload(bom: bool = True, crlf: bool = False, final_newline: bool = False) -> bytes:
    sep = b"\r\n" if crlf else b"\n"
    data = sep.join(EDGE_LINES) + (sep if final_newline else b"")
    return (b"\xef\xbb\xbf" if bom else b"") + data


def write(path: Path, data: bytes, kind: str) -> Path:
    if kind == "zst":
        blob = zstandard.ZstdCompressor().compress(data)
    elif kind == "zst-frames":  # concatenated frames, cut mid-line
        cuts = [0, 5, len(data) // 3, len(data) // 2, len(data)]
        blob = b"".join(zstandard.ZstdCompressor(level=1, write_checksum=True).compress(data[a:b])
                        for a, b in zip(cuts, cuts[1:]))
    elif kind == "gz":
        blob = gzip.compress(data)
    elif kind == "gz-members":
        cuts = [0, 3, len(data) // 3, len(data) // 2, len(data)]
        blob = b"".join(gzip.compress(data[a:b]) for a, b in zip(cuts, cuts[1:]))
    else:
        blob = data
    suffix = {"zst": ".zst", "zst-frames": ".zst", "gz": ".gz", "gz-members": ".gz"}.get(kind, "")
    out = path.with_name(path.name + suffix)
    out.write_bytes(blob)
    return out


KINDS = ["plain", "zst", "zst-frames", "gz", "gz-members"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_edge_lines(kind: str, chunk: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "READ_CHUNK", chunk)
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 90)  # some lines are too long, depending on chunks
    for variant, data in {"a": edge_payload(), "b": edge_payload(bom=False, crlf=True, final_newline=True)}.items():
        path = write(tmp_path / f"edge-{variant}.jsonl", data, kind)
        for window in (1, 4, 1000):
            assert_same(path, monkeypatch, id_field="id", window=window)
        assert_same(path, monkeypatch, field="doc.body", id_field="x.y", window=5)
        assert_same(path, monkeypatch, field="doc.body", window=5)
        for skip in (1, 2, 17, len(EDGE_LINES) - 1, len(EDGE_LINES) + 3):
            assert_same(path, monkeypatch, id_field="id", window=3, skip=skip)
        txt = write(tmp_path / f"edge-{variant}.txt", data, kind)
        assert_same(txt, monkeypatch, window=4)
        assert_same(txt, monkeypatch, window=4, skip=3)


def test_edge_statuses_are_exercised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 90)
    monkeypatch.setattr(readers, "READ_CHUNK", 64)
    windows = assert_same(write(tmp_path / "e.jsonl", edge_payload(), "plain"), monkeypatch, id_field="id")
    statuses = {s for w in windows for s in w[3]}
    assert statuses == {"ok", "invalid_utf8", "bad_json", "not_an_object", "missing_id", "missing_field",
                        "field_null", "field_not_string", "line_too_long"}
    windows = assert_same(write(tmp_path / "n.jsonl", edge_payload(), "plain"), monkeypatch, field="doc.body")
    assert {s for w in windows for s in w[3]} >= {"missing_field", "ok"}
    texts = [t for w in windows for t in w[0]]
    assert "nested last" in texts


@pytest.mark.parametrize("kind", KINDS[1:])
def test_damaged_archives(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Truncated at many points, garbage after the last frame, a flipped byte: the same records
    before the damage, the same damage line and reason."""
    monkeypatch.setattr(readers, "READ_CHUNK", 256)
    data = edge_payload() * 3 + b"".join(b'{"text": "r%d"}\n' % i for i in range(300))
    whole = write(tmp_path / "w.jsonl", data, kind).read_bytes()
    rng = random.Random(7)
    cases = {f"cut{n}": whole[:n] for n in [1, 2, 9, 17, len(whole) // 2, len(whole) - 1] +
             [rng.randrange(len(whole)) for _ in range(6)]}
    cases["garbage"] = whole + b"garbage after the last frame"
    cases["one-byte"] = whole + b"\x1f"
    cases["zeros"] = whole + b"\x00" * 8
    suffix = ".zst" if kind.startswith("zst") else ".gz"
    # Flipped bits: zlib is the system's for both readers, but python-zstandard bundles its own
    # zstd, and versions decode corrupt blocks (without checksums) to different garbage.
    for i in range(6 if suffix == ".gz" else 0):
        flipped = bytearray(whole)
        flipped[rng.randrange(10, len(whole))] ^= 1 << rng.randrange(8)
        cases[f"flip{i}"] = bytes(flipped)
    damaged = 0
    for name, blob in cases.items():
        path = tmp_path / f"{name}.jsonl{suffix}"
        path.write_bytes(blob)
        windows = assert_same(path, monkeypatch, window=50)
        damaged += _windows(path, "native", monkeypatch, window=50)[1] is not None
    assert damaged >= 9


# --- seeded random JSONL -----------------------------------------------------------------------

def _random_string(rng: random.Random) -> str:
    pools = [(0x20, 0x7E), (0x00, 0x1F), (0x80, 0x24F), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x10000, 0x10FFFF)]
    out = []
    for _ in range(rng.randrange(0, 24)):
        lo, hi = pools[rng.randrange(len(pools))] if rng.random() > 0.002 else (0xD800, 0xDFFF)
        out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def _encode_string(s: str, rng: random.Random) -> str:
    """A JSON string literal of `s`, escaping at random (\\u, surrogate pairs, short escapes)."""
    parts = ['"']
    for ch in s:
        cp = ord(ch)
        if 0xD800 <= cp <= 0xDFFF:
            parts.append(f"\\u{cp:04x}")  # a lone surrogate: invalid JSON for orjson
        elif ch in '"\\' or cp < 0x20 or rng.random() < 0.2:
            if cp > 0xFFFF:
                hi, lo = 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF)
                parts.append(f"\\u{hi:04X}\\u{lo:04x}")
            elif ch in '"\\':
                parts.append("\\" + ch)
            elif ch in "\b\f\n\r\t" and rng.random() < 0.5:
                parts.append(json.dumps(ch)[1:-1])
            else:
                parts.append(f"\\u{cp:04x}")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _random_value(rng: random.Random, depth: int = 0) -> str:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(["null", "true", "false"])
    if kind == 1:
        return str(rng.choice([0, -1, 7, 2**63 - 1, -2**63, 2**64 - 1, 2**64, -2**63 - 1, 10**30, rng.randrange(-10**6, 10**6)]))
    if kind == 2:
        return repr(rng.choice([0.5, -0.0, 1e16, 1e15, 1.5e-7, 1e-5, 1e300, rng.uniform(-1e6, 1e6),
                                rng.random() * 10 ** rng.randrange(-30, 30)]))
    if kind == 3:
        return rng.choice(["1E5", "1e+2", "-0", "0.0e0", "2.2250738585072011e-308", "1e400", "01", "1.", ".5", "-"])
    if kind in (4, 5):
        return _encode_string(_random_string(rng), rng)
    if kind == 6:
        return "[" + ", ".join(_random_value(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    keys = [rng.choice(["a", "b", "text", "id", "é", "k\\u0041"]) for _ in range(rng.randrange(5))]
    return "{" + ",".join(f'"{k}": {_random_value(rng, depth + 1)}' for k in keys) + "}"


def _random_line(rng: random.Random) -> bytes:
    fields = []
    if rng.random() < 0.9:
        fields.append('"text": ' + (_encode_string(_random_string(rng), rng) if rng.random() < 0.8 else _random_value(rng)))
    if rng.random() < 0.9:
        fields.append('"id": ' + _random_value(rng))
    if rng.random() < 0.3:
        fields.append('"meta": {"body": ' + _random_value(rng) + ', "body": ' + _random_value(rng) + "}")
    rng.shuffle(fields)
    line = ("{" + ", ".join(fields) + "}").encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.03:  # damage the line: cut, flip a byte, add junk
        at = rng.randrange(len(line) + 1)
        line = line[:at] + rng.choice([b"", b"\xff", b"\xc3", b",", b"}", b"\x00", b"\xed\xa0\x80"]) + line[at:]
    elif roll < 0.05:
        line = rng.choice([b"", b"  ", b"[]", b'"s"', b"\r"])
    return line


@pytest.mark.parametrize("seed", [1, 2])
def test_random_jsonl(seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    data = b"\n".join(_random_line(rng) for _ in range(10_000)) + b"\n"
    path = tmp_path / "random.jsonl"
    path.write_bytes(data)
    windows = assert_same(path, monkeypatch, id_field="id", window=777)
    statuses = [s for w in windows for s in w[3]]
    assert len(statuses) >= 9_500 and statuses.count("ok") > 3_000 and statuses.count("bad_json") > 100
    assert_same(path, monkeypatch, field="meta.body", id_field="id", window=5000)
    zst = tmp_path / "random.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(data))
    monkeypatch.setattr(readers, "READ_CHUNK", 4096)
    assert_same(zst, monkeypatch, id_field="id", window=1000, skip=rng.randrange(10_000))


def test_texts_arena_matches_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "a.jsonl", edge_payload(), "plain")
    monkeypatch.setenv("IGNITE_READER", "native")
    for w in RecordReader(expand_inputs([str(path)])[0], "text", "id", 7).windows():
        assert w.text_bytes.dtype == np.uint8 and w.text_offsets.dtype == np.int64
        assert len(w.text_offsets) == len(w.texts) + 1 and w.text_offsets[-1] == len(w.text_bytes)
        for i, text in enumerate(w.texts):
            assert bytes(w.text_bytes[w.text_offsets[i]:w.text_offsets[i + 1]]).decode() == text
            assert text == "" or status_names(w.status)[i] == "ok"
        assert w.texts[-1] == list(w.texts)[-1] and w.texts[1:3] == list(w.texts)[1:3]


def test_choice_of_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Native by default; IGNITE_READER=python, or a module without the reader, reads in Python."""
    path = write(tmp_path / "a.jsonl", b'{"text": "x"}\n', "plain")
    item = expand_inputs([str(path)])[0]
    monkeypatch.delenv("IGNITE_READER", raising=False)
    assert next(RecordReader(item, "text", None, 10).windows()).text_bytes is not None
    monkeypatch.setenv("IGNITE_READER", "python")
    assert next(RecordReader(item, "text", None, 10).windows()).text_bytes is None
    monkeypatch.delenv("IGNITE_READER")
    monkeypatch.setattr(readers, "native_reader_available", lambda: False)
    assert next(RecordReader(item, "text", None, 10).windows()).texts == ["x"]


def test_missing_file_is_file_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ignite.io.inputs import InputFile

    monkeypatch.setenv("IGNITE_READER", "native")
    item = InputFile(path=tmp_path / "gone.jsonl", format="jsonl", compression=None, size=0)
    with pytest.raises(FileNotFoundError):
        list(RecordReader(item, "text", None, 10).windows())
