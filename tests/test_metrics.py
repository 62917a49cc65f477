"""#18: Prometheus metrics scraped from a real run add up to its summary, promtool accepts them,
the textfile is replaced atomically, and the run report names the stage that was slowed."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, cli_command, read_jsonl_zst

prometheus_parser = pytest.importorskip("prometheus_client.parser")

RECORDS = 12_000


def _texts(n: int) -> list[str]:
    """Real passages where ../shared is present, else generated sentences of a similar length."""
    shared = SHARED_DATA / "passages.jsonl.zst"
    if shared.is_file():
        return [r["text"] for r in read_jsonl_zst(shared, n)]
    rng = random.Random(0)
    words = "the a of to embed record file window token batch device commit index run query".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(10, 90))) for _ in range(n)]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Path:
    from tiny_model import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"), model_dir)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], list[str]]:
    """Passages with bad lines among them; the bad statuses it must produce; the good texts."""
    texts = _texts(RECORDS)
    lines = [json.dumps({"id": f"p{i}", "text": t}) for i, t in enumerate(texts)]
    bad = {"bad_json": ['{"id": "x", "text": '] * 3, "missing_field": ['{"id": "y"}'] * 4,
           "field_not_string": ['{"id": "z", "text": 7}'] * 2}
    for status, rows in bad.items():
        for row in rows:
            lines.insert(random.Random(len(lines)).randrange(len(lines)), row)
    path = tmp_path_factory.mktemp("metrics-corpus") / "passages.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {k: len(v) for k, v in bad.items()}, texts


def _families(text: str) -> dict[str, dict[tuple, float]]:
    """name -> {sorted label items: value} of every sample."""
    out: dict[str, dict[tuple, float]] = {}
    for family in prometheus_parser.text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def _value(fam: dict[str, dict[tuple, float]], name: str, **labels: str) -> float:
    return fam[name][tuple(sorted(labels.items()))]


def _read_until_port(proc: subprocess.Popen, lines: list[str]) -> int:
    """Collect stderr on a thread; the port from the `metrics on` line."""
    found = threading.Event()
    port: list[int] = []

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if (m := re.search(r"metrics on http://[^:]+:(\d+)/metrics", line)) and not port:
                port.append(int(m.group(1)))
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    assert found.wait(300), "no metrics line"
    assert port, "".join(lines)
    return port[0]


def test_metrics_scraped_during_a_run_add_up(tmp_path: Path, cache_dir: Path, tiny_model: Path,
                                              corpus: tuple[Path, dict[str, int], list[str]]) -> None:
    path, bad, texts = corpus
    out, prom = tmp_path / "emb.npy", tmp_path / "ignite.prom"
    env = dict(os.environ, IGNITE_CACHE=str(cache_dir))
    # One backend thread: the run lasts long enough to be scraped while it goes on.
    proc = subprocess.Popen([*cli_command(), "embed", "--input", str(path), "--output", str(out), "--model",
                             str(tiny_model), "--backend", "onnxruntime", "--dtype", "fp32", "--threads", "1",
                             "--metrics-port", "0", "--metrics-file", str(prom),
                             "--metrics-file-interval", "0.25"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: list[str] = []
    textfile_reads, inodes, torn = 0, set(), []

    def watch_textfile() -> None:
        nonlocal textfile_reads
        while proc.poll() is None:
            try:
                inode, text = os.stat(prom).st_ino, prom.read_text()
            except FileNotFoundError:
                continue
            textfile_reads += 1
            inodes.add(inode)
            if not text.endswith("\n") or "ignite_eta_seconds" not in text:
                torn.append(text[-200:])
            time.sleep(0.01)

    watcher = threading.Thread(target=watch_textfile, daemon=True)
    try:
        port = _read_until_port(proc, lines)
        watcher.start()
        scrapes: list[str] = []
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    scrapes.append(r.read().decode())
            except OSError:
                pass  # the run ended between poll() and the request
            time.sleep(0.2)
        assert proc.wait(timeout=600) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    watcher.join()
    stderr = "".join(lines)
    running = [_families(s) for s in scrapes if 'ignite_phase{phase="running"} 1.0' in s]
    assert running, f"no scrape while the stages ran ({len(scrapes)} scrapes)"
    # Counters only go up while the run goes on.
    for name in ("ignite_records_read_total", "ignite_batches_total", "ignite_commits_total"):
        seen = [next(iter(f[name].values())) for f in running]
        assert seen == sorted(seen), (name, seen)
    assert max(next(iter(f["ignite_records_read_total"].values())) for f in running) > 0

    # The final textfile against the summary line and the report.
    final = prom.read_text()
    fam = _families(final)
    n = len(texts) + sum(bad.values())
    summary = re.search(r"embedded ([\d,]+) records.*?; ([\d,]+) failed \(([^)]*)\)", stderr)
    assert summary, stderr
    assert int(summary.group(1).replace(",", "")) == n == sum(fam["ignite_records_total"].values())
    failed = {k: int(v) for k, v in (item.rsplit(" ", 1) for item in summary.group(3).split(", "))}
    assert failed == bad
    for status, count in bad.items():
        assert _value(fam, "ignite_records_total", status=status) == count
    assert _value(fam, "ignite_records_total", status="ok") == len(texts)
    assert _value(fam, "ignite_records_read_total") == n
    assert _value(fam, "ignite_rows_committed") == n
    assert _value(fam, "ignite_input_read_bytes_total") == path.stat().st_size

    # Tokens: the real ones counted independently with the model's own tokenizer.
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(128)
    real = sum(len(e.ids) for e in tok.encode_batch(texts))
    assert _value(fam, "ignite_tokens_total", kind="real") == real
    report = json.loads((tmp_path / "emb.report.json").read_text())
    assert report["totals"]["tokens"]["real"] == real
    assert _value(fam, "ignite_tokens_total", kind="padded") == report["totals"]["tokens"]["padded"]
    assert _value(fam, "ignite_batches_total") == report["totals"]["batches"]
    assert sum(fam["ignite_device_records_total"].values()) == len(texts)
    assert report["totals"]["statuses"] == {"ok": len(texts), **bad}

    # The textfile: read while it was rewritten, never torn, replaced (new inode) each time.
    assert textfile_reads > 0 and not torn, torn[:1]
    assert len(inodes) >= 2, "the textfile was never replaced during the run"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ignite.prom")) == ["ignite.prom"]

    # promtool, from Debian's prometheus package, on a live scrape and on the textfile.
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not installed (apt-get install prometheus); .ci/run installs it")
        pytest.skip("promtool not installed (Debian package prometheus)")
    for text in (scrapes[len(scrapes) // 2], final):
        check = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip() and not check.stderr.strip(), \
            check.stdout + check.stderr


def test_metrics_flags_are_checked(tmp_path: Path, cache_dir: Path, corpus: tuple) -> None:
    from conftest import run_cli

    path = corpus[0]
    r = run_cli("embed", "--input", path, "--output", tmp_path / "e.npy", "--metrics-port", "70000")
    assert r.returncode == 2 and "must be a port number" in r.stderr and "Traceback" not in r.stderr
    for interval in ("0", "-1", "soon", "nan"):
        r = run_cli("embed", "--input", path, "--output", tmp_path / "e.npy", "--metrics-file-interval", interval)
        assert r.returncode == 2 and "must be a positive number of seconds" in r.stderr, r.stderr
    r = run_cli("embed", "--input", path, "--output", tmp_path / "e.npy", env={"IGNITE_METRICS_PORT": "http"},
                cache_dir=cache_dir)
    assert r.returncode == 2 and "IGNITE_METRICS_PORT='http' is not a port number" in r.stderr
    r = run_cli("embed", "--input", path, "--output", tmp_path / "e.npy", "--metrics-file",
                tmp_path / "no" / "such" / "m.prom", cache_dir=cache_dir)
    assert r.returncode == 2 and "cannot write --metrics-file" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("report", tmp_path / "missing.report.json")
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "x.json").write_text("{}")
    r = run_cli("report", tmp_path / "x.json")
    assert r.returncode == 2 and "not an Ignite run report" in r.stderr


class _NullRunner:
    """Zeros at once: the stages before the devices are all the run's cost."""

    name, device, dtype, dim = "null", "cpu", "fp32", 8

    def __init__(self, sleep: float = 0.0) -> None:
        self.sleep = sleep

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self.sleep:
            time.sleep(self.sleep)  # a slow device
        return np.zeros((len(input_ids), self.dim), np.float32)


def _report_of_run(tmp: Path, model_dir: Path, texts: list[str], runner: _NullRunner, tokenizer_threads: int,
                   monkeypatch: pytest.MonkeyPatch) -> dict:
    from ignite.config import EmbedConfig, ModelOptions
    from ignite.io.inputs import expand_inputs
    from ignite.io.manifest import WorkDir
    from ignite.pipeline.run import run_pipeline
    from ignite.pipeline.tokenize import WindowTokenizer
    from ignite.telemetry import report as run_report
    from ignite.telemetry.live import Telemetry

    monkeypatch.setenv("IGNITE_PIPELINE", "native")
    tmp.mkdir(parents=True, exist_ok=True)
    src = tmp / "in.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp / "emb.npy"
    options = ModelOptions(pooling="mean", normalize=False, max_length=256, prefix="", dim=None)
    cfg = EmbedConfig(inputs=(src,), output=out, output_kind="npy", field="text", id_field=None, model_name="null",
                      model_path=model_dir, model=options, backend="null", dtype="fp32", output_dtype="float32",
                      batch_tokens=8192, window_records=8192, shard_rows=1000, cache_dir=tmp, threads=1, quiet=True,
                      overwrite=False, errors_path=None, max_errors=None)
    work = WorkDir(out)
    start = work.create({"format": 1, "inputs": [], "options": {}})
    tokenizer = WindowTokenizer(model_dir / "tokenizer.json", 256, "", threads=tokenizer_threads)
    files = expand_inputs([str(src)])
    telemetry = Telemetry(sum(f.size for f in files))
    run_pipeline(cfg, files, runner, tokenizer, work, start, telemetry=telemetry)
    return run_report.build(telemetry, {}, "finished", tokenizer_threads=tokenizer_threads)


def test_report_names_a_one_thread_tokenizer(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts(30_000)
    report = _report_of_run(tmp_path, model_dir, texts, _NullRunner(), 1, monkeypatch)
    neck = report["bottleneck"]
    assert neck["stage"] == "tokenizer", report["stages"]
    assert "raise --tokenizer-threads (now 1)" in neck["advice"]
    assert report["totals"]["records_this_run"] == len(texts)


def test_report_names_a_slow_device(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Long enough (about 2 s of device time) that the final commit's fsync, slow on a busy disk,
    # does not weigh on the devices' share of the run.
    texts = _texts(6_000)
    report = _report_of_run(tmp_path, model_dir, texts, _NullRunner(sleep=0.02), 1, monkeypatch)
    assert report["bottleneck"]["stage"] == "devices", report["stages"]
    assert report["stages"]["devices"]["busy_share"] > 0.8
    device = report["devices"]["cpu"]
    assert device["records"] == len(texts) and device["batches"] == report["totals"]["batches"]


def test_report_command_prints_and_plots(tmp_path: Path, model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest import run_cli
    from ignite.telemetry import report as run_report

    report = _report_of_run(tmp_path / "run", model_dir, _texts(2_000), _NullRunner(sleep=0.01), 1, monkeypatch)
    path = tmp_path / "emb.report.json"
    run_report.write(path, report)
    r = run_cli("report", path, "--plot", tmp_path / "r.png")
    assert r.returncode == 0, r.stderr
    assert "bottleneck: devices busy" in r.stdout
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_names_the_busiest_stage_of_the_last_second() -> None:
    from ignite.telemetry.live import Telemetry

    class Stats:
        records = resumed_rows = real_tokens = padded_tokens = batches = 0
        statuses: dict = {}

    t = Telemetry(100)
    reader, tokenizer = t.clock("reader"), t.clock("tokenizer")
    worker = t.worker("cpu", "null", "fp32")
    t.stats, t.started = Stats(), time.monotonic()
    t._record(t.snapshot())
    time.sleep(0.2)
    # Over the last 0.2 s: the tokenizer worked 0.18 s, the reader 0.02 s, the device 0.05 s.
    tokenizer.seconds, reader.seconds, worker.clock.seconds = 0.18, 0.02, 0.05
    t._record(t.snapshot())
    assert t.live_view().startswith("tokenizer 8") or t.live_view().startswith("tokenizer 9"), t.live_view()
