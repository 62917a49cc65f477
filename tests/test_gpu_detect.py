"""GPU detection without torch: ignite._engine asks the CUDA driver (dlopen of libcuda.so.1), so
a machine with no driver imports the module and reports no GPU, a driver that fails is reported in
one line, and a working one lists its devices, all without importing torch. A fake driver built
here with the C compiler stands in for the real one."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ignite import hardware

ROOT = Path(__file__).resolve().parents[1]

# The driver API calls the probe makes, answering as two GPUs would; FAKE_CUDA_INIT sets cuInit's status.
FAKE_DRIVER = r"""
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
static int init_status(void) { const char* s = getenv("FAKE_CUDA_INIT"); return s ? atoi(s) : 0; }
int cuInit(unsigned flags) { (void)flags; return init_status(); }
int cuDriverGetVersion(int* v) { *v = 12040; return 0; }
int cuDeviceGetCount(int* n) { *n = 2; return 0; }
int cuDeviceGet(int* d, int i) { *d = i; return 0; }
int cuDeviceGetName(char* name, int len, int d) { strncpy(name, d ? "Fake H200" : "Fake H100", len); return 0; }
int cuDeviceTotalMem_v2(size_t* bytes, int d) { *bytes = (size_t)(80 + 61 * d) << 30; return 0; }
int cuDeviceGetAttribute(int* v, int attr, int d) { (void)d; *v = attr == 75 ? 9 : 0; return 0; }
int cuGetErrorName(int s, const char** p) { *p = s == 999 ? "CUDA_ERROR_UNKNOWN" : "CUDA_ERROR_OTHER"; return 0; }
int cuGetErrorString(int s, const char** p) { (void)s; *p = "fake driver failure"; return 0; }
"""

PROBE = textwrap.dedent("""
    import json, sys
    from ignite import hardware
    report = hardware.gpu_report()
    print(json.dumps({"gpus": [g.__dict__ for g in report.gpus], "source": report.source, "note": report.note,
                      "select_all": hardware.select_gpus("all"), "torch": "torch" in sys.modules}))
""")


def _probe(env: dict[str, str] | None = None) -> dict:
    run_env = {**os.environ, "PYTHONPATH": str(ROOT / "python"), **(env or {})}
    done = subprocess.run([sys.executable, "-c", PROBE], env=run_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def fake_driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the fake CUDA driver")
    folder = tmp_path_factory.mktemp("fake_cuda")
    (folder / "fake.c").write_text(FAKE_DRIVER)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(folder / "libcuda.so.1"), str(folder / "fake.c")], check=True)
    return folder


def test_this_machine_without_torch() -> None:
    found = _probe()
    assert found["torch"] is False, "finding GPUs imported torch"
    assert found["source"].endswith("(ignite._engine)") or found["source"] == "ignite._engine"
    if not found["gpus"]:
        assert found["note"] and found["select_all"] == []


def test_fake_driver_lists_its_devices(fake_driver: Path) -> None:
    found = _probe({"LD_LIBRARY_PATH": str(fake_driver)})
    assert found["torch"] is False
    assert [g["name"] for g in found["gpus"]] == ["Fake H100", "Fake H200"]
    assert [g["total_memory"] >> 30 for g in found["gpus"]] == [80, 141]
    assert [tuple(g["sm"]) for g in found["gpus"]] == [(9, 0), (9, 0)]
    assert found["source"] == "CUDA driver 12.4 (ignite._engine)"
    assert found["select_all"] == ["cuda:0", "cuda:1"]


def test_fake_driver_without_devices_or_failing(fake_driver: Path) -> None:
    none = _probe({"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_INIT": "100"})  # CUDA_ERROR_NO_DEVICE
    assert none["gpus"] == [] and "no device" in none["note"]
    broken = _probe({"LD_LIBRARY_PATH": str(fake_driver), "FAKE_CUDA_INIT": "999"})
    assert broken["gpus"] == [] and broken["select_all"] == []
    assert "CUDA_ERROR_UNKNOWN (999): fake driver failure in cuInit" in broken["note"]


def test_doctor_shows_the_driver(fake_driver: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python"), "LD_LIBRARY_PATH": str(fake_driver)}
    done = subprocess.run([sys.executable, "-m", "ignite", "doctor"], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Fake H200, 141 GiB, sm_90" in done.stdout
    assert "CUDA driver 12.4" in done.stdout


def test_torch_is_the_fallback_without_the_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    from ignite import _engine

    monkeypatch.delattr(_engine, "cuda_devices")
    hardware.gpu_report.cache_clear()
    try:
        report = hardware.gpu_report()
    finally:
        hardware.gpu_report.cache_clear()
    assert report.source.startswith("torch ")
