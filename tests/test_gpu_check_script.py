"""benchmarks/gpu_check.sh --cpu, the CPU rehearsal of the GPU check, end to end: it must run and
write the results.json the GPU run will write, so the script cannot rot between the rare times
a GPU is at hand."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from conftest import REPO, shared_file


def test_gpu_check_cpu_mode_writes_its_results(tmp_path: Path) -> None:
    shared_file("passages.jsonl.zst")  # skips, saying why, where the corpus is absent
    out = tmp_path / "out"
    # A generous bound: about a minute on an idle 2-core machine, several on a shared one.
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "GPU_CHECK_SECONDS": "900"})
    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "cpu" and results["records"] == 300
    assert results["machine"]["cpu"] and "cpu_flags" in results["machine"] and "gpus" in results["machine"]
    assert results["steps"]["build"].startswith(("ok", "configured"))
    assert "skipped" in results["steps"]["gpu_tests"] or "passed" in results["steps"]["gpu_tests"]
    rows = results["rows"]
    assert not [r for r in rows if "error" in r or "skipped" in r], rows
    # Same model, same weights: Ignite's vectors are sentence-transformers'. Twelve layers of random
    # weights amplify rounding (openvino's kernels against torch's), hence the lower floor there.
    for model, floor in (("all-MiniLM-L6-v2", 0.999), ("e5-small-v2 (random weights)", 0.99)):
        mine = {r["system"]: r for r in rows if r["model"] == model}
        ignite, alone = mine["ignite"], mine["backend alone"]
        assert ignite["texts_per_s"] > 0 and alone["texts_per_s"] > 0
        assert 0 < ignite["pipeline_efficiency"] < 5
        assert ignite["device"] == results["machine"]["cpu"]
        assert any(r.get("best") for r in mine.values() if r["system"].startswith("sentence-transformers"))
        assert ignite["min_cosine_vs_st_best"] >= floor
    table = (out / "results.md").read_text()
    assert "| all-MiniLM-L6-v2 | ignite |" in table and "RANDOM weights" in table
    assert results["machine"]["cpu"] in table
