"""Image inputs end to end through the CLI, with a tiny random-weight CLIP: folders (recursive,
sorted), globs, WebDataset tars (one cut mid-member: damage reported, the images before it kept),
Parquet with a binary column and with Hugging Face's {bytes, path} struct, JSONL with relative
paths; ids as each kind names its images; row i is image i; bad images keep their rows with a
status; kill -9 mid-run then --resume equals an uninterrupted run; search by text and by image."""
from __future__ import annotations

import json
import os
import signal
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from clipkit import FAST, build_clip, folder_images, shared_images, tar_images, write_tar
from conftest import cosine_rows, run_cli
from resumekit import assert_same_npy_outputs, manifest, start_cli, wait_for_pipeline


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_clip("tiny", tmp_path_factory.getbasetemp() / "clip-tiny")


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes]]:
    """Ten shared photos (JPEG, PNG and WebP among them)."""
    items = folder_images(10)
    assert {Path(k).suffix for k, _ in items} >= {".jpg"}
    return items


@pytest.fixture(scope="module")
def baseline(tiny_clip: Path, photos: list[tuple[str, bytes]], tmp_path_factory: pytest.TempPathFactory,
             cache_dir: Path) -> dict[str, np.ndarray]:
    """Each photo's embedding from a folder run, by name: every other input kind must give the same."""
    folder = tmp_path_factory.mktemp("photos")
    for name, data in photos:
        (folder / name).write_bytes(data)
    out = folder.parent / "baseline.npy"
    proc = run_cli("embed", "--input", folder, "--output", out, "--model", tiny_clip, *FAST, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    ids = pq.read_table(out.with_name("baseline.ids.parquet")).column("id").to_pylist()
    assert ids == [name for name, _ in photos]  # sorted by name, ids relative to the folder
    return dict(zip(ids, np.load(out)))


def _run(tmp: Path, model: Path, cache_dir: Path, *args: str | Path, code: int = 0) -> tuple[np.ndarray, list, str]:
    out = tmp / "out.npy"
    proc = run_cli("embed", *args, "--output", out, "--model", model, *FAST, "--overwrite", cache_dir=cache_dir)
    assert proc.returncode == code, proc.stderr
    meta = pq.read_table(tmp / "out.ids.parquet").to_pylist() if (tmp / "out.ids.parquet").exists() else []
    return (np.load(out) if out.exists() else np.zeros((0, 0))), meta, proc.stderr


def _same(vectors: np.ndarray, names: list[str], baseline: dict[str, np.ndarray]) -> None:
    assert len(vectors) == len(names)
    assert cosine_rows(vectors, np.stack([baseline[n] for n in names])).min() >= 0.99999


def test_nested_folder_and_glob_ids(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                                    cache_dir: Path) -> None:
    root = tmp_path / "root"
    (root / "b").mkdir(parents=True)
    (root / "a.txt").write_text("not an image, not listed")
    for i, (name, data) in enumerate(photos[:4]):
        (root / ("b" if i % 2 else ".") / name).write_bytes(data)
    vectors, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", root)
    expected = sorted([photos[0][0], photos[2][0]] + [f"b/{photos[1][0]}", f"b/{photos[3][0]}"])
    assert [m["id"] for m in meta] == expected
    _same(vectors, [Path(i).name for i in expected], baseline)
    vectors, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", str(root / "b" / "*.jpg"))
    names = sorted(n for n, _ in (photos[1], photos[3]) if n.endswith(".jpg"))
    assert [m["id"] for m in meta] == names
    _same(vectors, names, baseline)


def test_tar_shard_ids_and_rows(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                                cache_dir: Path) -> None:
    keys = [f"{i:06d}" for i in range(len(photos))]
    tar = write_tar(tmp_path / "shard-00000.tar", [(k, d) for k, (_, d) in zip(keys, photos)])
    vectors, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", tar)
    assert [m["id"] for m in meta] == keys
    assert [m["line"] for m in meta] == list(range(1, len(keys) + 1))  # the image's ordinal in the shard
    _same(vectors, [n for n, _ in photos], baseline)


def test_tar_cut_mid_member_keeps_rows_before(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                                              cache_dir: Path) -> None:
    keys = [f"{i:06d}" for i in range(len(photos))]
    full = write_tar(tmp_path / "full.tar", [(k, d) for k, (_, d) in zip(keys, photos)])
    import tarfile

    with tarfile.open(full) as archive:
        fifth = next(m for m in archive if m.name == f"{keys[4]}.jpg" or m.name.startswith(keys[4]))
    cut = tmp_path / "cut.tar"
    cut.write_bytes(full.read_bytes()[:fifth.offset_data + fifth.size // 2])
    vectors, meta, stderr = _run(tmp_path, tiny_clip, cache_dir, "--input", cut, code=4)
    assert "cut.tar: damaged after line 4" in stderr and "cut in member" in stderr
    assert [m["id"] for m in meta] == keys[:4]
    _same(vectors, [n for n, _ in photos[:4]], baseline)


def test_parquet_bytes_and_hf_struct(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                                     cache_dir: Path) -> None:
    names = [n for n, _ in photos]
    pq.write_table(pa.table({"key": names, "jpg": pa.array([d for _, d in photos], pa.binary())}),
                   tmp_path / "bytes.parquet")
    vectors, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", tmp_path / "bytes.parquet",
                            "--image-field", "jpg", "--id-field", "key")
    assert [m["id"] for m in meta] == names
    _same(vectors, names, baseline)
    # Hugging Face datasets' Image feature: {bytes, path}; a row with only a path reads it beside the file.
    (tmp_path / names[1]).write_bytes(photos[1][1])
    cells = [{"bytes": d, "path": n} for n, d in photos]
    cells[1] = {"bytes": None, "path": names[1]}
    pq.write_table(pa.table({"image": cells}), tmp_path / "hf.parquet")
    vectors, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", tmp_path / "hf.parquet", "--image-field",
                            "image")
    assert [m["id"] for m in meta] == names  # the struct's path names the image
    _same(vectors, names, baseline)
    _, _, stderr = _run(tmp_path, tiny_clip, cache_dir, "--input", tmp_path / "hf.parquet", "--image-field", "img",
                        code=2)
    assert "no column 'img'" in stderr and "Traceback" not in stderr


def test_jsonl_relative_paths(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                              cache_dir: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for name, data in photos:
        (tmp_path / "imgs" / name).write_bytes(data)
    rows = [{"id": f"doc-{i}", "file": f"imgs/{n}"} for i, (n, _) in enumerate(photos)]
    rows.insert(3, {"id": "gone", "file": "imgs/missing.jpg"})
    (tmp_path / "list.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    vectors, meta, stderr = _run(tmp_path, tiny_clip, cache_dir, "--input", tmp_path / "list.jsonl",
                                 "--image-field", "file", "--id-field", "id")
    assert [m["id"] for m in meta] == [r["id"] for r in rows]
    assert meta[3]["status"] == "missing_image" and not vectors[3].any()
    ok = [i for i in range(len(rows)) if i != 3]
    _same(vectors[ok], [n for n, _ in photos], baseline)


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring width x height (the data is never reached)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


def test_bad_images_keep_their_rows(tiny_clip: Path, photos: list, baseline: dict, tmp_path: Path,
                                    cache_dir: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = photos[0]
    (folder / "0-good.jpg").write_bytes(good[1])
    (folder / "1-empty.jpg").write_bytes(b"")
    (folder / "2-text.jpg").write_text("this is not a JPEG\n")
    jpeg = next(d for n, d in photos if n.endswith(".jpg"))
    (folder / "3-truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    (folder / "4-bomb.png").write_bytes(_png_bomb(20_000, 20_000))
    (folder / "5-good.jpg").write_bytes(good[1])
    errors = tmp_path / "errors.jsonl"
    vectors, meta, stderr = _run(tmp_path, tiny_clip, cache_dir, "--input", folder, "--errors", errors)
    statuses = [m["status"] for m in meta]
    assert statuses == ["ok", "bad_image", "bad_image", "bad_image", "image_too_large", "ok"]
    assert not vectors[1:5].any()
    _same(vectors[[0, 5]], [good[0], good[0]], baseline)
    assert "1-empty.jpg:1: bad_image (row 1, id 1-empty.jpg, kept as zeros)" in stderr
    assert "4-bomb.png:1: image_too_large (row 4, id 4-bomb.png, kept as zeros)" in stderr
    listed = [json.loads(line) for line in errors.read_text().splitlines()]
    assert [(e["row"], e["reason"]) for e in listed] == [(1, "bad_image"), (2, "bad_image"), (3, "bad_image"),
                                                         (4, "image_too_large")]
    # A lower --max-image-pixels turns a real photo away too.
    _, meta, _ = _run(tmp_path, tiny_clip, cache_dir, "--input", folder, "--max-image-pixels", "1000")
    assert meta[0]["status"] == "image_too_large"


def _loose_and_shard(tmp_path: Path, folder: str, n_loose: int, n_tar: int) -> tuple[Path, Path]:
    """The first `n_loose` shared loose photos in tmp_path/folder, and a tar of the first `n_tar`
    images of the first shared shard."""
    loose = tmp_path / folder
    loose.mkdir()
    for name, data in folder_images(n_loose):
        (loose / name).write_bytes(data)
    return loose, write_tar(tmp_path / "s.tar", tar_images(shared_images() / "photos-00000.tar", n_tar))


def test_kill_then_resume_equals_uninterrupted(tiny_clip: Path, tmp_path: Path, cache_dir: Path) -> None:
    loose, shard = _loose_and_shard(tmp_path, "loose", 40, 80)
    inputs = [loose, shard]
    # A commit every window: the kills are aimed at committed row counts.
    args = ["embed", "--input", *inputs, "--model", tiny_clip, *FAST, "--window-records", "8", "--commit-interval", "0"]
    reference = tmp_path / "ref.npy"
    proc = run_cli(*args, "--output", reference, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out.npy"
    killed_at = []
    for _ in range(2):  # killed twice: once among the loose files, once inside the shard
        log = tmp_path / f"log-{len(killed_at)}.txt"
        runner = start_cli([*args, "--output", out, "--resume"], cache_dir, log)
        assert wait_for_pipeline(runner, log)
        target = 16 if not killed_at else 72
        deadline = time.monotonic() + 120
        while runner.poll() is None and time.monotonic() < deadline:
            state = manifest(out)
            if state is not None and state["rows"] >= target:
                break
            time.sleep(0.02)
        assert runner.poll() is None, "the run ended before it could be killed"
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        killed_at.append(manifest(out)["rows"])
    assert 0 < killed_at[0] < killed_at[1] < 120
    proc = run_cli(*args, "--output", out, "--resume", cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert f"resumed after {killed_at[1]:,}" in proc.stderr
    assert_same_npy_outputs(out, reference)


def test_search_by_text_and_by_image(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
                                     cache_dir: Path) -> None:
    """ViT-B/32 architecture, random weights: the ranking means nothing, but the path works end to end
    and an image finds itself first (one whose nearest other photo is not a near-copy of it)."""
    model = build_clip("vit-b-32", tmp_path_factory.getbasetemp() / "clip-vit-b-32")
    photos, shard = _loose_and_shard(tmp_path, "photos", 30, 20)
    index = tmp_path / "idx"
    proc = run_cli("embed", "--input", photos, shard, "--output", tmp_path / "e.npy", "--model", model,
                   "--index", index, *FAST, cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    assert "index Flat: 50 vectors" in proc.stderr
    proc = run_cli("search", "--index", index, "a red bicycle on a bridge", "-k", "3", cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    hits = [line.split("\t") for line in proc.stdout.splitlines()[1:]]
    assert len(hits) == 3 and all(h[3] for h in hits)
    vectors = np.load(tmp_path / "e.npy")[:30]
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -1)
    query = int(sims.max(axis=1).argmin())
    name = sorted(p.name for p in photos.iterdir())[query]
    proc = run_cli("search", "--index", index, "--query-image", photos / name, "-k", "3", cache_dir=cache_dir)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[1].split("\t")
    assert first[3] == name and float(first[2]) > 0.9999
