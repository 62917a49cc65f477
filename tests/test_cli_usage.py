"""Bad usage: one line on stderr naming the fix, exit code 2, never a traceback."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli


@pytest.fixture()
def good_input(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "hello"}\n{"text": "world"}\n')
    return path


def _assert_usage_error(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_input_file(tmp_path: Path) -> None:
    _assert_usage_error(run_cli("embed", "--input", tmp_path / "nope.jsonl", "--output", tmp_path / "o.npy"),
                        "nope.jsonl", "does not exist")


def test_unknown_input_extension(tmp_path: Path) -> None:
    bad = tmp_path / "data.csv"
    bad.write_text("a,b\n")
    _assert_usage_error(run_cli("embed", "--input", bad, "--output", tmp_path / "o.npy"), "data.csv", ".jsonl")


def test_unknown_field(tmp_path: Path, good_input: Path, cache_dir: Path) -> None:
    _assert_usage_error(run_cli("embed", "--input", good_input, "--output", tmp_path / "o.npy", "--field", "body",
                                cache_dir=cache_dir), "'body'", "--field")


def test_unknown_field_named_in_the_first_file_with_records(tmp_path: Path, cache_dir: Path) -> None:
    """The --field check reads the first JSONL file that has records; an empty one is passed over."""
    (tmp_path / "a-empty.jsonl").write_text("")
    (tmp_path / "b.jsonl").write_text('{"text": "hello"}\n')
    _assert_usage_error(run_cli("embed", "--input", tmp_path / "a-empty.jsonl", tmp_path / "b.jsonl", "--output",
                                tmp_path / "o.npy", "--field", "body", cache_dir=cache_dir), "b.jsonl", "'body'")


def test_output_folder_missing(tmp_path: Path, good_input: Path) -> None:
    _assert_usage_error(run_cli("embed", "--input", good_input, "--output", tmp_path / "no" / "such" / "o.npy"),
                        "does not exist", "mkdir")


def test_unknown_output_extension(tmp_path: Path, good_input: Path) -> None:
    _assert_usage_error(run_cli("embed", "--input", good_input, "--output", tmp_path / "o.csv"), ".npy")


def test_unknown_model(tmp_path: Path, good_input: Path) -> None:
    result = run_cli("embed", "--input", good_input, "--output", tmp_path / "o.npy", "--model", "acme/no-such-model",
                     env={"HF_HOME": str(tmp_path / "hf")})
    _assert_usage_error(result, "acme/no-such-model", "Hugging Face cache", "--model")


def test_unknown_flag(tmp_path: Path, good_input: Path) -> None:
    _assert_usage_error(run_cli("embed", "--input", good_input, "--output", tmp_path / "o.npy", "--fast"),
                        "--fast", "--help")


def test_existing_output_needs_overwrite(tmp_path: Path, good_input: Path) -> None:
    out = tmp_path / "o.npy"
    out.write_bytes(b"x")
    _assert_usage_error(run_cli("embed", "--input", good_input, "--output", out), "--overwrite")


def test_help_is_useful() -> None:
    result = run_cli("embed", "--help")
    assert result.returncode == 0
    for flag in ("--input", "--output", "--field", "--id-field", "--model", "--dim", "--batch-tokens", "exit codes"):
        assert flag in result.stdout
    top = run_cli("--help")
    assert top.returncode == 0 and "embed" in top.stdout and "doctor" in top.stdout
