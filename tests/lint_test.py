"""ruff, the project's one linter and formatter, is part of the test run."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff(*args):
  return subprocess.run(
    [sys.executable, "-m", "ruff", *args],
    cwd=ROOT,
    capture_output=True,
    text=True,
    check=False,
  )


def test_ruff_check():
  result = _ruff("check", ".")
  assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
  result = _ruff("format", "--check", ".")
  assert result.returncode == 0, result.stdout + result.stderr
