"""The Colab notebooks: stored small and without outputs, and executed top to
bottom at smoke size (on the session's smoke runs) as a user would."""

import itertools
import json
import pathlib

import mediapy
import numpy as np
import pytest

from saas_jax.render import video

ROOT = pathlib.Path(__file__).resolve().parents[1]
COLAB = ROOT / "colab"
NOTEBOOKS = sorted(COLAB.glob("*.ipynb"))
# A rendered copy (with outputs) for people to look at; git-ignored.
EXECUTED = COLAB / "executed"
MAX_BYTES = 64_000


def test_there_are_notebooks():
  assert [p.name for p in NOTEBOOKS] == [
    "quickstart.ipynb",
    "style_space.ipynb",
    "train_your_corpus.ipynb",
  ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_small_and_without_outputs(path):
  assert path.stat().st_size < MAX_BYTES
  nb = json.loads(path.read_text())
  for cell in nb["cells"]:
    assert cell["cell_type"] in ("markdown", "code")
    if cell["cell_type"] == "code":
      assert cell["outputs"] == [] and cell["execution_count"] is None
  # Every code cell is short and explained by the text cell before it.
  cells = nb["cells"]
  assert cells[0]["cell_type"] == "markdown"
  for before, cell in itertools.pairwise(cells):
    if cell["cell_type"] == "code":
      assert before["cell_type"] == "markdown"
      source = "".join(cell["source"])
      assert len(source.splitlines()) <= 20
      if "plt.subplots" in source:  # a plot: labelled axes and a title
        for label in ("title=", "xlabel=", "ylabel="):
          assert label in source, (path.name, source[:60])


def _execute(name, env, monkeypatch):
  import nbclient
  import nbformat

  for key, value in env.items():
    monkeypatch.setenv(key, value)  # the kernel inherits the environment
  nb = nbformat.read(COLAB / name, as_version=4)
  client = nbclient.NotebookClient(
    nb,
    timeout=900,
    kernel_name="python3",
    resources={"metadata": {"path": str(COLAB)}},
  )
  try:
    client.execute()  # raises CellExecutionError naming the failing cell
  finally:
    EXECUTED.mkdir(exist_ok=True)
    nbformat.write(nb, EXECUTED / name)
  return nb


def _errors(nb):
  return [
    o
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
    if o.output_type == "error"
  ]


def _outputs(nb, mime):
  return [
    o["data"][mime]
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
    if mime in o.get("data", {})
  ]


def _check_video(path, panels, speech_s=4.0):  # colab/examples/arctic_a0007
  info = video.probe(str(path))
  assert abs(info["duration"] - speech_s) <= 1 / info["fps"] + 1e-6, path
  assert info["audio_duration"] is not None  # every video has the speech
  assert abs(info["audio_duration"] - speech_s) < 0.1, path
  frames = np.asarray(mediapy.read_video(str(path)))
  assert frames.shape[1:] == (256, 256 * panels, 3), path
  assert frames.std() > 5  # a drawn face, not a blank frame


@pytest.mark.slow
def test_quickstart_runs(smoke_runs, tmp_path, monkeypatch):
  out = tmp_path / "out"
  video.use_bundled_ffmpeg()
  nb = _execute(
    "quickstart.ipynb",
    {
      "SAAS_JAX_NOTEBOOK_VARIANT": "smoke",
      "SAAS_JAX_NOTEBOOK_RUNS": smoke_runs,
      "SAAS_JAX_NOTEBOOK_OUT": str(out),
    },
    monkeypatch,
  )
  assert not _errors(nb)
  panels = {
    "style_and_generated.mp4": 2,
    "three_styles.mp4": 3,
    "style_strength.mp4": 3,
    "pose_samples.mp4": 3,
  }
  for name, count in panels.items():
    _check_video(out / name, count)
  # The videos are in the notebook itself (embedded), not only on disk.
  html = _outputs(nb, "text/html")
  assert sum("<video" in h for h in html) == len(panels)


@pytest.mark.slow
def test_style_space_runs(smoke_runs, prepared_tiny, tmp_path, monkeypatch):
  out = tmp_path / "out"
  video.use_bundled_ffmpeg()
  nb = _execute(
    "style_space.ipynb",
    {
      "SAAS_JAX_NOTEBOOK_RUNS": smoke_runs,
      "SAAS_JAX_NOTEBOOK_CORPUS": prepared_tiny["corpus"],
      "SAAS_JAX_NOTEBOOK_OUT": str(out),
    },
    monkeypatch,
  )
  assert not _errors(nb)
  assert len(_outputs(nb, "image/png")) == 4  # use, map, nearest, pose
  _check_video(out / "between_two_styles.mp4", 3)


@pytest.mark.slow
def test_train_your_corpus_runs(
  smoke_runs, prepared_tiny, tmp_path, monkeypatch
):
  """On the tiny synthetic corpus, whose shards and smoke runs the session
  has made with the notebook's own commands: preparing and training find
  them finished (so the notebook's commands match those runs), evaluation
  and generation run. (Run by hand on the corpus as a MEAD tree, from
  scratch: README.)"""
  work = tmp_path / "work"
  video.use_bundled_ffmpeg()
  data_dir, layout = prepared_tiny["data"]
  nb = _execute(
    "train_your_corpus.ipynb",
    {
      "SAAS_JAX_NOTEBOOK_CORPUS": prepared_tiny["corpus"],
      "SAAS_JAX_NOTEBOOK_LAYOUT": layout,
      "SAAS_JAX_NOTEBOOK_VARIANT": "smoke",
      "SAAS_JAX_NOTEBOOK_OUT": str(work),
      "SAAS_JAX_NOTEBOOK_DATA": data_dir,
      "SAAS_JAX_NOTEBOOK_RUNS": smoke_runs,
      "SAAS_JAX_NOTEBOOK_PAIRS": prepared_tiny["corpus"],
      "SAAS_JAX_NOTEBOOK_MAX_PAIRS": "2",
      "SAAS_JAX_NOTEBOOK_TENSORBOARD": "0",
    },
    monkeypatch,
  )
  assert not _errors(nb)
  logs = "".join(
    "".join(o.get("text", ""))
    for c in nb.cells
    if c.cell_type == "code"
    for o in c.outputs
  )
  # prepare found the shards made (a summary, the config to train with).
  assert (
    f"--config.data.config={layout} " in logs and "no clips skipped" in logs
  )
  assert "every stage in" in logs and "is finished" in logs
  assert len(_outputs(nb, "image/png")) == 2  # loss curves, evaluation
  report = "".join(_outputs(nb, "text/markdown"))
  assert "| pairs:model/mouth_lmk |" in report  # the synthetic ground truth
  info = video.probe(str(work / "your_corpus.mp4"))
  assert info["audio_duration"] is not None
  assert abs(info["duration"] - info["audio_duration"]) < 0.1
  frames = np.asarray(mediapy.read_video(str(work / "your_corpus.mp4")))
  assert frames.shape[1:] == (256, 512, 3) and frames.std() > 5
