"""The outputs of an evaluation: per_clip.csv (one row per item), summary.json
(means with 95% bootstrap intervals, over clips and over the runs of a
variant) and report.md with its plots. Everything is a function of the rows,
so the same inputs give the same files."""

import csv
import io
import json
import math
import os

import numpy as np

from input_pipeline import io as io_lib
from saas_jax.evaluators import stats

KEYS = ("variant", "run", "section", "item")
# A pair's column: 1 when its style clip is of a style the models were
# trained on, 0 when it is the corpus's held-out person's (no stage saw its
# styles). Where the pairs have both, they are also summarized per half, as
# sections "pairs_seen" and "pairs_new": a codebook may help the first and
# hurt the second, and pooled the two can cancel.
SEEN = "seen_style"
HALVES = {1.0: "pairs_seen", 0.0: "pairs_new"}


def metric_names(rows) -> list[str]:
  return sorted({k for r in rows for k in r if k not in (*KEYS, "error")})


def _scores(rows) -> list[str]:
  """The metrics to summarize: SEEN is a label of the pair, not a score."""
  return [n for n in metric_names(rows) if n != SEEN]


def to_csv(rows) -> str:
  names = metric_names(rows)
  out = io.StringIO()
  w = csv.writer(out, lineterminator="\n")
  w.writerow([*KEYS, *names, "error"])
  for r in rows:
    cells = [r[k] for k in KEYS]
    for n in names:
      v = r.get(n)
      cells.append("" if v is None or _nan(v) else repr(float(v)))
    w.writerow([*cells, r.get("error", "")])
  return out.getvalue()


def is_evaluation(folder: str) -> bool:
  """Whether folder holds an earlier evaluation's outputs."""
  return os.path.isfile(os.path.join(folder, "per_clip.csv"))


def read(folder: str) -> tuple[list[dict], dict, str]:
  """(rows, set metrics, what it scored) of an earlier evaluation of one
  runs folder, so that runs scored elsewhere (another session, another
  machine) pool with new ones without their checkpoints."""
  from saas_jax.errors import DataError

  with open(os.path.join(folder, "per_clip.csv"), newline="") as f:
    table = list(csv.DictReader(f))
  if not table or any(k not in table[0] for k in (*KEYS, "error")):
    raise DataError(folder, "per_clip.csv is empty or not an evaluation's")
  runs = {(r["variant"], r["run"]) for r in table}
  if len(runs) != 1:
    raise DataError(
      folder,
      f"holds {len(runs)} runs; give the evaluation of one runs folder",
    )
  rows = []
  for r in table:
    row = {k: r[k] for k in KEYS}
    row.update(
      {k: float(v) for k, v in r.items() if k not in row and v and k != "error"}
    )
    if r["error"]:
      row["error"] = r["error"]
    rows.append(row)
  # Evaluations before the column was written: the classifier, which knows
  # the training styles only, scored exactly the seen pairs.
  known = "model/style_accuracy"
  if SEEN not in table[0] and known in table[0]:
    for row in rows:
      if row["section"] == "pairs" and "error" not in row:
        row[SEEN] = float(known in row)
  with open(os.path.join(folder, "summary.json")) as f:
    (entry,) = json.load(f).values()
  set_metrics = {
    name.split(":", 1)[1]: ci["mean"]
    for name, ci in entry["metrics"].items()
    if name.startswith("set:")
  }
  scored = ""
  md = os.path.join(folder, "report.md")
  if os.path.isfile(md):
    with open(md) as f:
      scored = next(
        (ln[2:].strip() for ln in f if ln.startswith("- data ")), ""
      )
  return rows, set_metrics, scored


def _nan(v) -> bool:
  return isinstance(v, float) and math.isnan(v)


def summarize(rows, set_metrics: dict) -> dict:
  """{variant: {section/metric: interval}}; a metric of several runs of a
  variant (seeds) gets the two-level interval. set_metrics: {variant:
  {run: {metric: value}}}, reported as the mean over runs. Pairs of seen
  and of new styles are also summarized apart (`halves`)."""
  out = {}
  variants = list(dict.fromkeys(r["variant"] for r in rows))
  items = {
    v: sum(r["variant"] == v and "error" not in r for r in rows)
    for v in variants
  }
  rows = [*rows, *halves(rows)]
  for v in variants:
    mine = [r for r in rows if r["variant"] == v and "error" not in r]
    runs = list(dict.fromkeys(r["run"] for r in mine))
    table = {}
    for section in sorted({r["section"] for r in mine}):
      here = [r for r in mine if r["section"] == section]
      for name in _scores(here):
        groups = [
          [r.get(name, np.nan) for r in here if r["run"] == run] for run in runs
        ]
        ci = stats.grouped_interval(groups)
        if ci["n"]:
          table[f"{section}:{name}"] = ci
    for run_metrics in [set_metrics.get(v, {}).get(r, {}) for r in runs]:
      for name, value in run_metrics.items():
        table.setdefault(f"set:{name}", {"values": []})["values"].append(value)
    for entry in table.values():
      if "values" in entry:
        entry["mean"] = float(np.mean(entry.pop("values")))
    out[v] = {
      "runs": runs,
      "items": items[v],
      "failed": sum(1 for r in rows if r["variant"] == v and "error" in r),
      "metrics": table,
    }
  for v in variants[1:]:
    out[v]["minus_" + variants[0]] = differences(rows, variants[0], v)
  return out


def halves(rows) -> list[dict]:
  """The pair rows again, each under the section of its half (HALVES), when
  every pair has SEEN and both halves occur; else none."""
  pairs = [r for r in rows if r["section"] == "pairs" and "error" not in r]
  if {r.get(SEEN) for r in pairs} != set(HALVES):
    return []
  return [
    {**{k: x for k, x in r.items() if k != SEEN}, "section": HALVES[r[SEEN]]}
    for r in pairs
  ]


def _halves_note(rows) -> list[str]:
  """What the report says of the halves: their sizes, or why there are
  none although some pairs are labelled."""
  split = halves(rows)
  if split:
    n = {
      h: len({r["item"] for r in split if r["section"] == h})
      for h in HALVES.values()
    }
    return [
      f"- pairs_seen: the {n['pairs_seen']} pairs whose style clip is of a "
      f"style seen in training; pairs_new: the {n['pairs_new']} of the "
      "held-out person's styles"
    ]
  pairs = [r for r in rows if r["section"] == "pairs" and "error" not in r]
  unlabelled = sum(SEEN not in r for r in pairs)
  if 0 < unlabelled < len(pairs):
    return [
      f"- pairs not split by whose style they ask for: {unlabelled} of "
      f"{len(pairs)} pair rows do not say ({SEEN}, or the classifier's "
      "accuracy in an earlier evaluation)"
    ]
  return []


def _by_item(mine, name) -> dict:
  """{item: [value per run]} of one metric over one variant's rows of one
  section (NaN where a run lacks it), runs in their order of appearance."""
  runs = list(dict.fromkeys(r["run"] for r in mine))
  out = {}
  for r in mine:
    out.setdefault(r["item"], [np.nan] * len(runs))[runs.index(r["run"])] = (
      r.get(name, np.nan)
    )
  return out


def differences(rows, reference: str, variant: str) -> dict:
  """{section:metric: paired interval of variant minus reference} over the
  items both were scored on (the same held-out pairs in every --compare
  of one split)."""
  out = {}
  ok = [r for r in rows if "error" not in r]
  for section in sorted({r["section"] for r in ok if r["variant"] == variant}):
    here = [r for r in ok if r["section"] == section]
    mine = [r for r in here if r["variant"] == variant]
    ref = [r for r in here if r["variant"] == reference]
    for name in _scores(mine):
      a, b = _by_item(mine, name), _by_item(ref, name)
      items = [i for i in a if i in b]
      if not items:
        continue
      ci = stats.paired_difference(
        np.array([a[i] for i in items], np.float64).T,
        np.array([b[i] for i in items], np.float64).T,
      )
      if ci["n"]:
        out[f"{section}:{name}"] = ci
  return out


def write(out_dir: str, rows, summary: dict, notes: list[str]) -> list[str]:
  """Writes the three outputs (and the plots) atomically; returns paths."""
  os.makedirs(out_dir, exist_ok=True)
  written = [
    _write(out_dir, "per_clip.csv", to_csv(rows)),
    _write(
      out_dir, "summary.json", json.dumps(summary, indent=1, sort_keys=True)
    ),
  ]
  plots = _plots(out_dir, summary)
  written += plots
  md = markdown(summary, rows, [os.path.basename(p) for p in plots], notes)
  written.append(_write(out_dir, "report.md", md))
  return written


def _write(out_dir, name, text) -> str:
  path = os.path.join(out_dir, name)
  io_lib.atomic_write_bytes(path, text.encode())
  return path


def fmt(ci: dict) -> str:
  """An interval as the tables print it: mean [low, high]."""
  if "low" not in ci:
    return f"{ci['mean']:.4g}"
  return f"{ci['mean']:.4g} [{ci['low']:.4g}, {ci['high']:.4g}]"


def _differences_table(summary, variants) -> list[str]:
  key = "minus_" + variants[0]
  names = sorted({k for v in variants[1:] for k in summary[v].get(key, {})})
  lines = [
    "",
    f"Each variant minus {variants[0]}, paired over the items both were "
    "scored on (95% bootstrap: items drawn once for both, runs of each "
    "on their own); * where the interval leaves out 0.",
    "",
    "| metric | " + " | ".join(variants[1:]) + " |",
    "|" + "---|" * len(variants),
  ]
  for name in names:
    cells = []
    for v in variants[1:]:
      ci = summary[v].get(key, {}).get(name)
      cells.append(
        fmt(ci) + (" *" if stats.excludes_zero(ci) else "") if ci else ""
      )
    lines.append(f"| {name} | " + " | ".join(cells) + " |")
  return lines


def markdown(summary: dict, rows, plots, notes) -> str:
  variants = list(summary)
  names = sorted({k for v in summary.values() for k in v["metrics"]})
  lines = ["# Evaluation", ""]
  lines += [f"- {n}" for n in notes]
  lines += [""]
  for v, s in summary.items():
    lines.append(
      f"- **{v}**: {len(s['runs'])} run(s), {s['items']} items"
      + (f", {s['failed']} failed" if s["failed"] else "")
    )
  lines += _halves_note(rows)
  lines += [
    "",
    "Means with 95% bootstrap intervals over items (and over runs when a "
    "variant has several).",
    "",
  ]
  head = "| metric | " + " | ".join(variants) + " |"
  if len(variants) > 1:
    head += f" differs from {variants[0]} |"
  lines += [head, "|" + "---|" * (head.count("|") - 1)]
  for name in names:
    cells = []
    for v in variants:
      ci = summary[v]["metrics"].get(name)
      cells.append(fmt(ci) if ci else "")
    line = f"| {name} | " + " | ".join(cells) + " |"
    if len(variants) > 1:
      base = summary[variants[0]]["metrics"].get(name)
      marks = [
        v
        for v in variants[1:]
        if base
        and "low" in base
        and "low" in summary[v]["metrics"].get(name, {})
        and stats.differs(base, summary[v]["metrics"][name])
      ]
      line += f" {', '.join(marks)} |"
    lines.append(line)
  if len(variants) > 1:
    lines += _differences_table(summary, variants)
  failed = [r for r in rows if "error" in r]
  if failed:
    lines += ["", "## Failed items", ""]
    lines += [
      f"- {r['variant']} {r['section']} {r['item']}: {r['error']}"
      for r in failed
    ]
  if plots:
    lines += ["", "## Plots", ""]
    lines += [f"![{p}]({p})" for p in plots]
  return "\n".join(lines) + "\n"


def _plots(out_dir, summary) -> list[str]:
  """One bar chart per section: each metric's mean and interval per
  variant (metrics on their own scales, so one panel each)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  variants = list(summary)
  names = sorted(
    {
      k
      for v in summary.values()
      for k, ci in v["metrics"].items()
      if "low" in ci
    }
  )
  paths = []
  for section in sorted({n.split(":")[0] for n in names}):
    mine = [n for n in names if n.split(":")[0] == section]
    cols = min(4, len(mine))
    rows_ = -(-len(mine) // cols)
    fig, axes = plt.subplots(
      rows_, cols, figsize=(3.2 * cols, 2.6 * rows_), squeeze=False
    )
    for ax, name in zip(axes.flat, mine, strict=False):
      for i, v in enumerate(variants):
        ci = summary[v]["metrics"].get(name)
        if ci and "low" in ci:
          err = [[ci["mean"] - ci["low"]], [ci["high"] - ci["mean"]]]
          ax.bar(i, ci["mean"], yerr=err, capsize=3, color=f"C{i}")
      ax.set(title=name.split(":")[1], xticks=range(len(variants)))
      ax.set_xticklabels(variants, rotation=30, ha="right", fontsize=7)
      ax.tick_params(labelsize=7)
      ax.title.set_fontsize(8)
    for ax in axes.flat[len(mine) :]:
      ax.axis("off")
    fig.suptitle(f"{section}: mean and 95% interval per variant")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = os.path.join(out_dir, f"{section}.png")
    fig.savefig(path + ".tmp.png", dpi=90)
    os.replace(path + ".tmp.png", path)
    plt.close(fig)
    paths.append(path)
  return paths
