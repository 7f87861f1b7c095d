"""The embedded default data: the small synthetic corpus, as TFDS shards.

Generated and prepared on first use (about two minutes on 2 cores, with
progress shown) into $SAAS_JAX_CACHE, else ~/.cache/saas_jax:

  <cache>/synthetic_small_seed0_v2/   the corpus (wav + .mat + manifest.jsonl)
  <cache>/tfds_small_seed0_v2/talking_face/manifest/1.0.0/   its shards

The folder names carry the generator version: a new generator makes new
data beside the old (version 1 wrote its own coefficient layout; version 2
writes Deep3DFaceRecon's expression space, see input_pipeline/synthetic).
With speech="espeak" (config.data.speech) the same corpus spoken by eSpeak
NG goes to folders ending in _espeak.

A file lock makes concurrent first uses (several processes) wait for one.
"""

import fcntl
import os
import subprocess
import sys

PRESET = "small"
SEED = 0


def cache_dir() -> str:
  return os.environ.get(
    "SAAS_JAX_CACHE",
    os.path.join(os.path.expanduser("~"), ".cache", "saas_jax"),
  )


def corpus_dir(
  preset: str = PRESET, seed: int = SEED, speech: str | None = None
) -> str:
  """Where the default corpus itself (wav, .mat, style-transfer pairs) is.
  `speech`: its voices (None: the default ones)."""
  name = f"synthetic_{preset}_seed{seed}{_suffix(speech)}"
  return os.path.join(cache_dir(), name)


def _suffix(speech: str | None) -> str:
  """The folder names' end: the generator version, and the voices unless
  they are the default ones."""
  # Imported here: generate reads cache_dir() and none of the synthetic
  # package.
  from input_pipeline.synthetic import version

  plain = speech in (None, version.DEFAULT_SPEECH)
  return f"_v{version.GENERATOR_VERSION}" + ("" if plain else f"_{speech}")


def ensure(
  preset: str = PRESET, seed: int = SEED, speech: str | None = None
) -> tuple[str, str]:
  """Returns (data_dir, builder config) of the default data, making it once."""
  from input_pipeline.synthetic.version import DEFAULT_SPEECH

  speech = speech or DEFAULT_SPEECH
  root = cache_dir()
  os.makedirs(root, exist_ok=True)
  corpus = corpus_dir(preset, seed, speech)
  data_dir = os.path.join(root, f"tfds_{preset}_seed{seed}{_suffix(speech)}")
  with open(os.path.join(root, ".lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.isfile(os.path.join(corpus, "manifest.jsonl")):
      print(
        f"Generating the default data ({preset} synthetic corpus, {speech} "
        f"speech) in "
        f"{corpus} ...",
        file=sys.stderr,
        flush=True,
      )
      subprocess.run(
        [
          sys.executable,
          "-m",
          "input_pipeline.synthetic",
          "--out_dir",
          corpus,
          "--preset",
          preset,
          "--seed",
          str(seed),
          "--speech",
          speech,
        ],
        check=True,
      )
    from input_pipeline import prepare  # imports TF

    prepare.prepare("manifest", corpus, data_dir)
  return data_dir, "manifest"
