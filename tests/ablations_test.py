"""benchmarks/ablations.py: a results folder holds one experiment, so a
re-run pools only with results scored under the same settings."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

import ablations  # noqa: E402


def _scored(results, name, settings):
  os.makedirs(os.path.join(results, name))
  open(os.path.join(results, name, "per_clip.csv"), "w").close()
  with open(os.path.join(results, name, "run.json"), "w") as f:
    json.dump({"settings": settings}, f)


def _sweep(tmp_path, results, *options):
  cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "ablations.py")]
  cmd += ["--base", str(tmp_path / "base"), "--out", str(tmp_path / "out")]
  cmd += ["--seeds", "0", "--variants", "full", "--results", str(results)]
  return subprocess.run(
    cmd + list(options), capture_output=True, text=True, timeout=300
  )


def test_results_of_other_settings_are_not_pooled(tmp_path):
  results = tmp_path / "results"
  today = ablations._planned("configs/audio_driven.py:cpu", 0)
  before = ablations._planned(
    "configs/audio_driven.py:cpu,styled_decoder,no_stats,lr_constant", 0
  )
  assert today != before and today["model"]["decoder_style"] is False
  # Scored with the defaults of today: the same command skips it.
  _scored(results, "full_s0", json.loads(json.dumps(today)))
  done = _sweep(tmp_path, results)
  assert done.returncode == 0, done.stderr
  assert "scored already" in done.stderr
  assert "--compare full=" in done.stdout
  # The same folder asked for the official decoder, loss and schedule.
  other = _sweep(tmp_path, results, "--options", "styled_decoder,no_stats")
  assert other.returncode != 0
  assert "full_s0: scored with other settings" in other.stderr


def test_video_sweep_reads_its_own_settings(tmp_path):
  results = tmp_path / "results"
  video = ablations._planned("configs/video_driven.py:cpu", 0)
  assert video["loss"]["w_cycle"] > 0  # the video loss, not the audio one
  _scored(results, "full_s0", json.loads(json.dumps(video)))
  done = _sweep(tmp_path, results, "--driver", "video")
  assert done.returncode == 0, done.stderr
  assert "scored already" in done.stderr
  # What it would train and score: the video stage of each variant's runs.
  plan = _sweep(
    tmp_path,
    results,
    "--driver",
    "video",
    "--dry_run",
    "--variants",
    "full",
    "no_hyperstyle",
  )
  assert plan.returncode == 0, plan.stderr
  assert "--config=configs/video_driven.py:cpu,no_hyperstyle " in plan.stdout
  out = tmp_path / "out" / "no_hyperstyle_s0"
  assert f"--workdir={out / 'video_driven'} " in plan.stdout
  assert "--driver=video" in plan.stdout
  assert not out.exists()  # a dry run makes nothing
  # The audio sweep does not pool with video results.
  audio = _sweep(tmp_path, results)
  assert audio.returncode != 0
  assert "full_s0: scored with other settings" in audio.stderr


def test_results_from_before_an_option_pool_with_its_default(tmp_path):
  """Results scored before data.speech, model.mel_norm or hyper_gate
  existed were made with their defaults: the same command skips them."""
  results = tmp_path / "results"
  before = json.loads(
    json.dumps(ablations._planned("configs/audio_driven.py:cpu", 0))
  )
  del before["data"]["speech"], before["model"]["mel_norm"]
  del before["model"]["hyper_gate"]
  _scored(results, "full_s0", before)
  done = _sweep(tmp_path, results)
  assert done.returncode == 0, done.stderr
  assert "scored already" in done.stderr


def test_no_codebook_variant_freezes_its_own_style_stage(tmp_path):
  """The paper's no-codebook ablation: a style stage trained without one
  (made once, in OUT) is the variant's frozen style encoder; the base's
  stays linked for scoring."""
  plan = _sweep(
    tmp_path, tmp_path / "results", "--dry_run", "--variants", "no_codebook"
  )
  assert plan.returncode == 0, plan.stderr
  style = tmp_path / "out" / "style_vqvae_no_codebook"
  assert (
    f"--config=configs/style_vqvae.py:cpu,no_codebook --workdir={style}"
    in plan.stdout
  )
  assert "--config=configs/audio_driven.py:cpu,continuous " in plan.stdout
  assert f"--config.frozen.style={style} " in plan.stdout
  assert not (tmp_path / "out" / "no_codebook_s0").exists()


def test_overrides_reach_every_training_and_its_settings(tmp_path):
  """--set trains on another corpus: each training gets it, the style
  stage a variant makes too, and results scored on the default data do
  not pool with it (nor the other way round)."""
  sets = [
    "--set",
    "data.data_dir=/corpus/tfds",
    "--set",
    "data.config=manifest",
  ]
  planned = ablations._planned(
    "configs/audio_driven.py:cpu", 0, [s for s in sets if s != "--set"]
  )
  assert planned["data"]["data_dir"] == "/corpus/tfds"
  plan = _sweep(
    tmp_path,
    tmp_path / "r",
    "--dry_run",
    "--variants",
    "full",
    "no_codebook",
    *sets,
  )
  assert plan.returncode == 0, plan.stderr
  trainings = [
    line for line in plan.stdout.splitlines() if "saas_jax.main" in line
  ]
  assert len(trainings) == 3  # full, the no-codebook style stage, no_codebook
  for line in trainings:
    assert (
      "--config.data.data_dir=/corpus/tfds --config.data.config=manifest"
      in line
    )
  results = tmp_path / "results"
  default = ablations._planned("configs/audio_driven.py:cpu", 0)
  _scored(results, "full_s0", json.loads(json.dumps(default)))
  other = _sweep(tmp_path, results, *sets)
  assert other.returncode != 0
  assert "full_s0: scored with other settings" in other.stderr
  shutil.rmtree(results / "full_s0")
  _scored(results, "full_s0", json.loads(json.dumps(planned)))
  same = _sweep(tmp_path, results, *sets)
  assert same.returncode == 0, same.stderr
  assert "scored already" in same.stderr
  bad = _sweep(tmp_path, results, "--set", "data.config")
  assert bad.returncode == 2 and "give KEY=VALUE" in bad.stderr


def test_every_committed_result_matches_its_command_today():
  """A setting added since a result was scored takes its earlier value
  (workdir.ADDED_SETTINGS): the committed results still pool with a re-run
  of their command, and those runs still resume."""
  from saas_jax.engine import workdir

  checked = 0
  for path in glob.glob(os.path.join(ROOT, "benchmarks/results/*/*/run.json")):
    with open(path) as f:
      run = json.load(f)
    if "settings" not in run or "config" not in run:
      continue  # scored by hand, not by this benchmark
    planned = ablations._planned(run["config"], run["seed"], run.get("set", []))
    diff = workdir.config_diff(ablations._settings(run["settings"]), planned)
    assert diff == [], (path, diff)
    checked += 1
  assert checked >= 30


def test_committed_results_split_by_whose_style(tmp_path):
  """`evaluate --compare` on two committed results: 92 pairs of a style
  seen in training and 28 of the held-out person's, each half with its
  intervals and paired differences; the judge, fitted on the training
  styles, scores the first half only."""
  from saas_jax import evaluate

  r = os.path.join(ROOT, "benchmarks/results/video_mouth_keep")
  out = tmp_path / "eval"
  argv = ["--quiet", "--out", str(out), "--compare"]
  argv += [f"full={r}/full_s0", f"continuous={r}/continuous_s0"]
  assert evaluate.main(argv) == 0
  summary = json.loads((out / "summary.json").read_text())
  full = summary["full"]["metrics"]
  assert full["pairs_seen:model/exp_rest"]["n"] == 92
  assert full["pairs_new:model/exp_rest"]["n"] == 28
  assert "pairs_seen:model/judge_accuracy" in full
  assert "pairs_new:model/judge_accuracy" not in full
  d = summary["continuous"]["minus_full"]["pairs_new:model/exp_rest"]
  assert d["n"] == 28
  seen, new = (
    full[f"pairs_{h}:model/exp_rest"]["mean"] for h in ("seen", "new")
  )
  pooled = full["pairs:model/exp_rest"]["mean"]
  assert pooled == pytest.approx((92 * seen + 28 * new) / 120)


def test_code_at_inference_changes_the_generated_clip_only(
  smoke_runs, tmp_path
):
  """benchmarks/code_at_inference.py: the same generator fed quantized and
  continuous style codes; what does not depend on the generator (the
  content copy's scores) is the same in both, the generated clip is not."""
  import csv

  import code_at_inference

  out = tmp_path / "eval"
  argv = ["--runs", smoke_runs, "--driver", "audio", "--out", str(out)]
  assert code_at_inference.main([*argv, "--max_pairs", "2"]) == 0
  with open(out / "per_clip.csv") as f:
    rows = list(csv.DictReader(f))
  q, c = (
    [r for r in rows if r["variant"] == m] for m in ("quantized", "continuous")
  )
  assert len(q) == len(c) == 2 and [r["item"] for r in q] == [
    r["item"] for r in c
  ]
  pairs = list(zip(q, c, strict=True))
  assert all(a["content/exp_rest"] == b["content/exp_rest"] for a, b in pairs)
  assert any(a["model/exp_rest"] != b["model/exp_rest"] for a, b in pairs)
  summary = json.loads((out / "summary.json").read_text())
  assert "pairs:model/exp_rest" in summary["continuous"]["minus_quantized"]
