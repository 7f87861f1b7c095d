"""The corpus's eSpeak NG voices (input_pipeline.synthetic.espeak): the same
clip always sounds the same, the face and the sound share eSpeak's phone
timing, and such a corpus is never mixed with a source-filter one."""

import json
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from input_pipeline import io
from input_pipeline import synthetic as syn
from input_pipeline.synthetic import corpus, espeak, realism, speech
from input_pipeline.synthetic.__main__ import main as cli_main

SEED = 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
  out = tmp_path_factory.mktemp("espeak") / "tiny"
  syn.generate_corpus(
    out, "tiny", SEED, workers=1, progress=False, speech_engine="espeak"
  )
  return out


@pytest.fixture(scope="module")
def manifest(tiny):
  return syn.load_manifest(tiny)


def test_same_clip_same_samples_whatever_was_said_before():
  """eSpeak NG keeps state between utterances; every clip is still a
  function of (seed, clip id) alone."""
  a, b = corpus.plan_corpus("tiny")[:2]
  first = corpus.render_clip(SEED, a, speech_engine="espeak")
  corpus.render_clip(SEED, b, speech_engine="espeak")
  again = corpus.render_clip(SEED, a, speech_engine="espeak")
  assert np.array_equal(first.wav, again.wav)
  assert np.array_equal(first.exp, again.exp)
  assert first.utterance.labels == again.utterance.labels
  # Not the source-filter clip: another sound and another timing.
  plain = corpus.render_clip(SEED, a)
  assert plain.utterance.words == first.utterance.words
  assert not np.array_equal(plain.utterance.ends_ms, first.utterance.ends_ms)


def test_breathy_voices_do_not_follow_the_clock():
  """eSpeak seeds its noise generator from the clock when it starts; a
  breathy variant (f2) draws from it. Two processes a second apart must
  still say a clip alike."""
  code = (
    "import hashlib; from input_pipeline.synthetic import espeak; "
    "w, _ = espeak.speak('[[h@loU w3:ld]]', 'f2', 165, 50, 50, seed=7); "
    "print(hashlib.sha256(w.tobytes()).hexdigest())"
  )
  root = pathlib.Path(__file__).resolve().parents[1]
  digests = []
  for _ in range(2):
    out = subprocess.run(
      [sys.executable, "-c", code], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    digests.append(out.stdout.strip())
    time.sleep(1.1)
  assert digests[0] == digests[1]


def test_corpus_layout_and_workers(tiny, manifest, tmp_path):
  info = json.loads((tiny / "corpus_info.json").read_text())
  assert info["speech"] == "espeak" and info["complete"]
  for rec in manifest:
    ends = [p[2] for p in rec["phones"]]
    assert np.all(np.diff(ends) > 0)
    assert round(ends[-1] * speech.FPS) == rec["num_frames"]
    wav = io.load_audio(tiny / rec["audio_path"])
    assert len(wav) == rec["num_frames"] * speech.SAMPLE_RATE // speech.FPS
    assert np.abs(wav).max() > 0.05  # spoken, not silence
  again = tmp_path / "again"
  syn.generate_corpus(
    again, "tiny", SEED, workers=2, progress=False, speech_engine="espeak"
  )
  for rel in ("manifest.jsonl", manifest[3]["audio_path"]):
    assert (again / rel).read_bytes() == (tiny / rel).read_bytes()


def test_refuses_to_mix_with_source_filter_speech(tiny, capsys):
  before = (tiny / "corpus_info.json").read_bytes()
  assert cli_main(["--out_dir", str(tiny), "--preset", "tiny", "--quiet"])
  assert "speech='espeak'" in capsys.readouterr().err
  assert (tiny / "corpus_info.json").read_bytes() == before


def test_sound_and_face_follow_the_same_timing(tiny, manifest):
  """Open vowels are loud and open the lips; bilabial stops are quiet (their
  closure) and close them: both read through the manifest's (eSpeak's)
  timing. (With that timing 3 frames off either way, the vowels come out
  2-5 dB quieter than the stops instead of 10 dB louder.)"""
  loud, quiet = [], []
  clips = []
  for rec in manifest:
    wav = io.load_audio(tiny / rec["audio_path"])
    frames = wav.reshape(rec["num_frames"], -1)
    db = 10 * np.log10(np.mean(frames**2, 1) + 1e-10)
    labels = [
      syn.base_phone(x)
      for x in syn.frame_labels(rec["phones"], rec["num_frames"])
    ]
    loud += [
      d for d, x in zip(db, labels, strict=True) if x in ("AA", "AE", "AO")
    ]
    quiet += [d for d, x in zip(db, labels, strict=True) if x in ("P", "B")]
    clips.append(
      (io.load_coefficients(tiny / rec["coeff_path"]).exp, rec["phones"])
    )
  gap = np.median(loud) - np.median(quiet)
  closed, opened = realism.lip_gaps_by_phone(clips)
  print(
    f"\neSpeak corpus: open vowels {gap:.1f} dB above P/B frames; lip gap "
    f"{np.median(closed):.4f} (M/B/P) against {np.median(opened):.4f}"
  )
  assert gap > 6.0
  assert np.median(closed) < 0.2 * np.median(opened)


def test_phoneme_text_and_unknown_phonemes():
  plan = speech.Utterance(
    ("SIL", "HH", "AH0", "L", "OW1", "SIL", "W", "ER1", "L", "D", "SIL"),
    np.arange(11) * 40,
    np.arange(1, 12) * 40,
    (("HH", "AH0", "L", "OW1"), ("W", "ER1", "L", "D")),
  )
  assert espeak.espeak_text(plan.labels, plan.words) == (
    "[[h@l'oU _:_: w'3:ld]]"
  )
  said = espeak.realised_phones(
    [("h", 0), ("'oU", 50), (";", 60), ("_:", 90)], 100
  )
  assert said == [("HH", 0), ("OW1", 50), ("SIL", 90)]
  with pytest.raises(ValueError, match="unknown phoneme 'Q9'"):
    espeak.realised_phones([("Q9", 0)], 10)


def test_every_voice_variant_speaks():
  for voice in espeak.FEMALE_VOICES + espeak.MALE_VOICES:
    samples, events = espeak.speak("[[h@loU]]", voice, 165, 50, 50)
    assert len(samples) > 0.1 * espeak.ESPEAK_RATE, voice
    said = [m.lstrip("',") for m, _ in events]
    assert said[:4] == ["h", "@", "l", "oU"], voice
  with pytest.raises(ValueError, match="no voice variant 'nobody'"):
    espeak.speak("[[h@loU]]", "nobody", 165, 50, 50)


def test_missing_wheel_says_how_to_install(monkeypatch):
  monkeypatch.setitem(sys.modules, "espeakng_loader", None)
  with pytest.raises(ImportError, match="pip install espeakng-loader"):
    espeak.require()


def test_config_names_the_default_datas_speech(monkeypatch, tmp_path):
  """config.data.speech picks the default data's voices: the eSpeak corpus
  lives beside the default one, which keeps its folder names."""
  from input_pipeline import default_data
  from saas_jax.engine import config_lib
  from saas_jax.errors import DataError

  monkeypatch.setenv("SAAS_JAX_CACHE", str(tmp_path))
  plain = default_data.corpus_dir()
  assert plain == str(
    tmp_path / f"synthetic_small_seed0_v{corpus.GENERATOR_VERSION}"
  )
  assert default_data.corpus_dir(speech="espeak") == plain + "_espeak"
  c = config_lib.load("configs/audio_driven.py:cpu,espeak")
  assert c.data.speech == "espeak"
  config_lib.validate(c)
  c.data.speech = "festival"
  with pytest.raises(DataError, match="festival"):
    config_lib.validate(c)
