"""The style classifier stage trains and evaluates (smoke size)."""

import json
import os

import numpy as np

from saas_jax.engine import config_lib
from saas_jax.trainers import style_classifier

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_style_classifier_smoke(prepared_corpus, tmp_path):
  config = config_lib.load(
    os.path.join(ROOT, "configs/style_classifier.py:smoke")
  )
  config.data.data_dir, config.data.config = prepared_corpus
  config.data.eval_split = "test_person"
  config.eval_every = 4
  state = style_classifier.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == 4
  results = json.load(open(tmp_path / "eval_results.json"))
  assert 0 <= results["style_accuracy"] <= 1
  assert 0 <= results["window_accuracy"] <= 1
  lines = [json.loads(x) for x in open(tmp_path / "metrics.jsonl")]
  losses = [r["train/ce"] for r in lines if "train/ce" in r]
  assert len(losses) == 2 and np.all(np.isfinite(losses))
