"""`python -m saas_jax.evaluate` on the session's smoke runs: the three
outputs, two processes agree with one, variants and seeds compared."""

import csv
import json
import os
import sys

import conftest
import numpy as np
import pytest

from saas_jax import evaluate
from saas_jax.errors import DataError
from saas_jax.evaluators import report, stats

SMALL = ["--max_pairs", "2", "--max_clips", "3", "--num_samples", "2"]


def _evaluate(args, **kw):
  """The CLI as a user runs it: its own process, one CPU device."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
  cmd = [sys.executable, "-m", "saas_jax.evaluate", "--quiet", *args]
  return conftest.run_processes(lambda flags: [*cmd, *flags], env, **kw)


@pytest.fixture(scope="module")
def one_process(smoke_runs, tmp_path_factory):
  out = tmp_path_factory.mktemp("eval_one")
  _evaluate(["--runs", smoke_runs, "--out", str(out), *SMALL], num=1)
  return out


def _rows(out):
  with open(out / "per_clip.csv") as f:
    return list(csv.DictReader(f))


def test_writes_per_clip_summary_and_report(one_process):
  rows = _rows(one_process)
  assert [r["section"] for r in rows] == ["clips"] * 3 + ["pairs"] * 2
  pairs = [r for r in rows if r["section"] == "pairs"]
  for r in pairs:  # the ground truth of the synthetic pairs: errors exist
    assert float(r["model/mouth_lmk"]) > 0
    assert -1 <= float(r["model/sync_corr"]) <= 1
    assert float(r["pose/diversity"]) > 0  # 2 samples that differ
    # Head motion against each style smoothed as the sampler smooths, and
    # the onset-locked nod with its chance baseline, for samples and for A.
    assert float(r["pose/dist_style_smooth"]) >= 0
    assert float(r["pose/real_dist_smooth"]) >= 0
    for k in ("pose/nod_response", "pose/nod_gain", "pose/real_nod_gain"):
      assert k in r
    # The independent judge measures every system and the ground truth; it
    # abstains (empty) on all of them alike when B's style is a held-out
    # person's, which it was not fitted on.
    systems = ("model", "canonical", "content", "target")
    verdicts = {r[f"{s}/judge_accuracy"] for s in systems}
    assert verdicts <= {"0.0", "1.0"} or verdicts == {""}
    for system in systems:
      assert float(r[f"{system}/judge_dist"]) >= 0
    # The canonical branch alone differs from the full model.
    assert float(r["canonical/mouth_lmk"]) != float(r["model/mouth_lmk"])
  clips = [r for r in rows if r["section"] == "clips"]
  assert {r["style/retrieval"] for r in clips} <= {"0.0", "1.0"}
  # The test split's clips are of seen people: the judge names each.
  assert {r["judge/accuracy"] for r in clips} <= {"0.0", "1.0"}
  summary = json.loads((one_process / "summary.json").read_text())
  (variant,) = summary
  metrics = summary[variant]["metrics"]
  ci = metrics["pairs:model/mouth_lmk"]
  assert ci["low"] <= ci["mean"] <= ci["high"] and ci["n"] == 2
  want = np.mean([float(r["model/mouth_lmk"]) for r in pairs])
  assert ci["mean"] == pytest.approx(want)
  assert 1 <= metrics["set:style/perplexity"]["mean"]
  md = (one_process / "report.md").read_text()
  assert "| pairs:model/mouth_lmk |" in md
  assert "temperature 0.7, top-p 0.9" in md  # the pose sampling used
  for png in ("pairs.png", "clips.png"):
    assert f"]({png})" in md and (one_process / png).stat().st_size > 5000


@pytest.mark.slow
def test_two_processes_write_what_one_does(one_process, smoke_runs, tmp_path):
  out = tmp_path / "two"
  _evaluate(["--runs", smoke_runs, "--out", str(out), *SMALL], num=2)
  assert (out / "per_clip.csv").read_text() == (
    one_process / "per_clip.csv"
  ).read_text()
  assert "2 process(es)" in (out / "report.md").read_text()


@pytest.mark.parametrize(
  "flags",
  [
    ["--temperature", "0"],
    ["--top_p", "1.5"],
    ["--top_p", "-0.1"],
    ["--num_samples", "0"],
    ["--max_pairs", "-1"],
    ["--max_clips", "-1"],
    ["--out", __file__],  # a file: refused before any scoring
  ],
)
def test_bad_settings_are_refused_before_any_work(flags, capsys):
  with pytest.raises(SystemExit):
    evaluate.parse(["--runs", "r", *flags])
  assert flags[0] in capsys.readouterr().err


def test_variants_and_seeds_compared():
  """--compare NAME=RUNS,RUNS: rows of two runs (seeds) of variant b pool
  into one interval; the report marks intervals apart from the first's."""
  args = evaluate.parse(["--compare", "a=r0", "b=s0,s1"])
  assert evaluate.variants(args) == [("a", ["r0"]), ("b", ["s0", "s1"])]
  with pytest.raises(DataError, match="listed twice"):
    evaluate.variants(evaluate.parse(["--compare", "a=r0,r0"]))
  rng = np.random.default_rng(0)
  rows = [
    {"variant": v, "run": run, "section": "pairs", "item": str(i), "m": x}
    for v, runs, mean in (("a", ["r0"], 0.0), ("b", ["s0", "s1"], 1.0))
    for run in runs
    for i, x in enumerate(rng.normal(mean, 0.1, 30))
  ]
  summary = report.summarize(rows, {"b": {"s0": {"p": 2.0}, "s1": {"p": 4.0}}})
  a, b = (summary[v]["metrics"]["pairs:m"] for v in "ab")
  assert summary["b"]["runs"] == ["s0", "s1"] and b["n"] == 2 * a["n"] == 60
  want = np.mean(
    [np.mean([r["m"] for r in rows if r["run"] == s]) for s in ("s0", "s1")]
  )
  assert b["mean"] == pytest.approx(want)
  assert summary["b"]["metrics"]["set:p"]["mean"] == 3.0
  md = report.markdown(summary, rows, [], [])
  assert "| metric | a | b | differs from a |" in md
  assert md.split("| pairs:m |")[1].splitlines()[0].endswith(" b |")
  # b minus a, paired over the 30 items a and b share.
  d = summary["b"]["minus_a"]["pairs:m"]
  assert d["n"] == 30 and d["mean"] == pytest.approx(b["mean"] - a["mean"])
  assert stats.excludes_zero(d) and "minus_a" not in summary["a"]
  assert "Each variant minus a, paired" in md
  assert md.split("| pairs:m |")[2].splitlines()[0].endswith(" * |")


def test_pairs_are_also_summarized_per_half_by_whose_style(tmp_path):
  """Pairs of a style seen in training and of the held-out person's get
  their own intervals and paired differences (sections pairs_seen and
  pairs_new) beside the pooled ones, without counting a pair twice; an
  evaluation written before the column existed gets it back from the
  classifier's accuracy, which only seen styles have."""
  rows = [
    {
      "variant": v,
      "run": v + "0",
      "section": "pairs",
      "item": str(i),
      report.SEEN: float(i < 6),
      "m": (1.0 if i < 6 else 3.0) + (0.5 if v == "b" and i < 6 else 0.0),
    }
    for v in "ab"
    for i in range(8)
  ]
  summary = report.summarize(rows, {})
  a, b = summary["a"]["metrics"], summary["b"]["metrics"]
  assert summary["a"]["items"] == 8
  assert (a["pairs_seen:m"]["n"], a["pairs_new:m"]["n"]) == (6, 2)
  assert a["pairs_seen:m"]["mean"] == 1.0 and a["pairs_new:m"]["mean"] == 3.0
  assert a["pairs:m"]["mean"] == 1.5 and b["pairs_seen:m"]["mean"] == 1.5
  d = summary["b"]["minus_a"]
  assert d["pairs_seen:m"]["mean"] == 0.5 and d["pairs_new:m"]["mean"] == 0.0
  assert not any(report.SEEN in k for k in (*a, *d))  # a label, not a score
  md = report.markdown(summary, rows, [], [])
  assert "pairs_seen: the 6 pairs" in md and "pairs_new: the 2 of" in md
  # One half only (a corpus without a held-out person): no halves.
  only = [{**r, report.SEEN: 1.0} for r in rows]
  assert "pairs_seen:m" not in report.summarize(only, {})["a"]["metrics"]
  # Some rows unlabelled (a variant from an evaluation that does not say):
  # no halves for anyone, and the report says why.
  some = [r if r["variant"] == "a" else _without(r, report.SEEN) for r in rows]
  summary = report.summarize(some, {})
  assert "pairs_seen:m" not in summary["a"]["metrics"]
  md = report.markdown(summary, some, [], [])
  assert "not split by whose style they ask for: 8 of 16 pair rows" in md
  # Written without the column: read back, the halves are there again.
  old = [
    _without(r, report.SEEN)
    | ({"model/style_accuracy": 1.0} if r[report.SEEN] else {})
    for r in rows
    if r["variant"] == "a"
  ]
  report.write(str(tmp_path), old, report.summarize(old, {}), [])
  back, _, _ = report.read(str(tmp_path))
  assert [r[report.SEEN] for r in back] == [r[report.SEEN] for r in rows[:8]]
  again = report.summarize(back, {})["a"]["metrics"]
  assert again["pairs_new:m"]["mean"] == 3.0


def _without(row, key):
  return {k: v for k, v in row.items() if k != key}


def test_earlier_evaluations_pool_without_their_runs(
  one_process, tmp_path, capsys
):
  """--compare reads an evaluation folder back instead of scoring: two
  copies of one evaluation pool as two seeds with the same means; an
  evaluation of other items is refused."""
  import shutil

  seed1 = tmp_path / "seed1"
  shutil.copytree(one_process, seed1)
  out = tmp_path / "pooled"
  argv = ["--quiet", "--out", str(out), "--compare", f"a={one_process}"]
  assert evaluate.main([*argv, f"b={one_process},{seed1}"]) == 0
  rows = _rows(out)
  assert len(rows) == 3 * len(_rows(one_process))
  assert {r["run"] for r in rows if r["variant"] == "b"} == {
    str(one_process),
    str(seed1),
  }
  summary = json.loads((out / "summary.json").read_text())
  a, b = summary["a"]["metrics"], summary["b"]["metrics"]
  assert b["pairs:model/mouth_lmk"]["n"] == 2 * a["pairs:model/mouth_lmk"]["n"]
  assert b["pairs:model/mouth_lmk"]["mean"] == pytest.approx(
    a["pairs:model/mouth_lmk"]["mean"]
  )
  assert b["set:style/perplexity"] == a["set:style/perplexity"]
  assert "an earlier evaluation of" in (out / "report.md").read_text()
  # One clip fewer: not the same items, so the intervals would not compare.
  lines = (seed1 / "per_clip.csv").read_text().splitlines(keepends=True)
  (seed1 / "per_clip.csv").write_text("".join(lines[:1] + lines[2:]))
  capsys.readouterr()
  assert evaluate.main([*argv, f"b={seed1}"]) == 2
  err = capsys.readouterr().err
  assert f"error: {seed1}: scored other items than {one_process}" in err


def test_a_failed_item_is_reported_and_the_run_goes_on():
  def boom():
    raise ValueError("unreadable clip")

  bad = evaluate._scored(
    {"variant": "v", "run": "r", "section": "clips", "item": "bad"}, 1, boom
  )
  good = evaluate._scored(
    {"variant": "v", "run": "r", "section": "clips", "item": "good"},
    0,
    lambda: {"classifier/accuracy": 1.0},
  )
  rows = [good, bad]
  for r in rows:
    del r["_order"]
  assert bad["error"] == "ValueError: unreadable clip"
  summary = report.summarize(rows, {})
  assert summary["v"]["failed"] == 1 and summary["v"]["items"] == 1
  md = report.markdown(summary, rows, [], [])
  assert "- v clips bad: ValueError: unreadable clip" in md
  assert (
    report.to_csv(rows).splitlines()[2].endswith("ValueError: unreadable clip")
  )


def test_evaluators_compiled_functions_are_loaded_again(smoke_runs, cache_dir):
  """The evaluation's own compiled functions (style codes and tokens, the
  critic's classifier, the pose codebook) are keyed on their runs, so a
  second load of the pipeline (as in a second process) loads them untraced
  and gives the same results."""
  from saas_jax.evaluators import suite

  st = np.random.default_rng(0).normal(0, 0.3, (70, 64)).astype(np.float32)
  head = np.random.default_rng(1).normal(0, 0.1, (70, 6)).astype(np.float32)

  def score():
    m = suite.Models.load(smoke_runs)
    return [
      m.space.code(st),
      m.space.tokens(st),
      m.classify(st),
      *m.pose_recon(head),
    ]

  first = score()
  seen = {n: os.stat(cache_dir / n).st_mtime_ns for n in os.listdir(cache_dir)}
  names = {n.split("-")[0] for n in seen}
  assert {"style_space_codes", "style_space_tokens", "classify"} <= names
  assert "pose_recon" in names
  again = score()
  assert set(os.listdir(cache_dir)) == seen.keys()  # nothing new compiled
  assert all(os.stat(cache_dir / n).st_mtime_ns > t for n, t in seen.items())
  for a, b in zip(first, again, strict=True):
    np.testing.assert_array_equal(a, b)
