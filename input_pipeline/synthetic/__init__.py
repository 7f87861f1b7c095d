"""A synthetic talking-face corpus: the default data and the style benchmark.

Real corpora (MEAD, HDTF) cannot ship, so this package writes one in the same
on-disk formats, from nothing but a seed:

  python -m input_pipeline.synthetic --out_dir D --preset {tiny,small,full}
      [--seed 0] [--space {real,semantic}] [--speech {source_filter,espeak}]
      [--workers N] [--quiet]

Coefficient space (generator version 2). The corpus writes expressions in
Deep3DFaceRecon's 64-d Basel expression space (--space real, the default),
as every real file does (Deep3DFaceRecon, PIRender, StyleTalk, SAAS): the
generator's components (below) are laid out with tables fitted on real
clips (real_space.py, calibrate.py; README, Data), so that what trains on
the corpus reads real style clips and its output renders with PIRender.
--space semantic writes version 1's own layout, where each coefficient has
a meaning of its own (the layout described below; motion.py).

Speech. The default voices are speech.py's source-filter model (below).
--speech espeak has eSpeak NG speak each clip's planned phones instead
(espeak.py; `pip install espeakng-loader`, GPL-3.0, not installed by the
package): its own durations, intonation and voice variants, and the face
follows the phone timing eSpeak reports, so manifest phones, audio and
expression agree. corpus_info.json records the choice ("speech").

It is also where the paper's claims are measured: here we know what person
A's sentence looks like when said in person B's style (the style-transfer
ground truth), which no real corpus gives.

Corpus
  Presets (PRESETS): tiny = 3 persons x 8 emotions x level 2 x 3 clips (72
  clips, ~5 min; unit tests); small = 8 x 8 x levels {1, 3} x 4 (512 clips,
  ~37 min; the embedded default, 12-30 s on 2 cores); full = 48 x 8 x 3 x 16
  (18432 clips, ~22 h). Clip ids follow MEAD: `P007#angry#level_2#003`, files
  `P007/angry/level_2/<id>.wav` (16 kHz PCM16) and `.mat` (PIRender layout:
  `coeff` [T,257] with identity/texture/lighting constant per person,
  expression 80:144, angles 224:227, translation 254:257; `transform_params`
  [T,5] = [256, 256, s, tx, ty]; `fps` = 25). Clips last 3.04-8 s (mean about
  4.3 s), a whole number of 25 fps frames, and the audio has exactly
  num_frames * 640 samples.
  Splits: the last person(s) are held out entirely (`test_person`: 1 in tiny
  and small, 4 in full); of every other style, the last quarter of the clips
  (at least one) is held out as `val` or `test`, alternating, the rest is
  `train`. The 8 emotions are MEAD's; unlike MEAD, `neutral` exists at every
  level (its levels differ only by the level's emphasis, see below).
  manifest.jsonl (one sorted-key JSON object per clip, sorted by id): id,
  person, emotion, level, split, fps, num_frames, audio_path, coeff_path
  (relative to out_dir) and phones [[label, start s, end s], ...] (ARPAbet;
  vowels carry a stress digit, AA1 / AA0, that base_phone strips; times are
  whole milliseconds and tile the clip from 0 to num_frames / 25).
  corpus_info.json: preset, seed, generator_version, space, speech, counts
  and seconds per split, persons, test_persons, emotions, levels,
  total_seconds, complete.
  style_transfer/pairs.jsonl (content_id, style_id, target_path, num_frames)
  and style_transfer/<content_id>__<style_id>.npy, float32 [T, 64]: for every
  test / test_person clip A, a test / test_person clip B of another person,
  and render_expression(A's phones, style_for(seed, *B's style key), T_A,
  space=the corpus's) with the stochastic parts off.
  Same seed, same bytes, for any --workers (on one platform: float rounding
  of other numpy/BLAS builds may differ). Every file is written atomically;
  re-running completes an interrupted corpus (existing clips are skipped);
  an out_dir holding another preset/seed/version/space/speech is refused.

The generative model (what a model trained on it must learn)
  Style = (person, emotion, level); `style_for(seed, person, emotion, level)`
  derives all its parameters (styles.Style) from the seed and that key.
  * Speech (speech.py). A fixed pseudo-English lexicon (3000 content words,
    40 function words) of syllables over 40 ARPAbet phones: vowels and
    diphthongs with formant targets (stress digit 1/0), stops with closure,
    burst and aspiration (P B T D K G), fricatives (F V TH DH S Z SH ZH),
    affricates (CH JH), aspirate HH, nasals (M N NG), approximants (L R W Y)
    and SIL. Sentences are random word sequences; phrases are separated by
    pauses, with phrase-final lengthening; durations jitter by 18 %.
    Audio is a source-filter synthesis: glottal pulses at an f0 contour
    (declination, a pitch accent on every stressed vowel, falls before
    pauses, drift and jitter) through five formant resonators, a glottal
    tilt and nasal anti-resonances, plus shaped noise for frication, bursts,
    aspiration and breathiness, plus a recording noise floor. The person
    sets f0, vocal-tract length (formant scale), speaking rate, tilt and
    breathiness; the emotion scales rate, f0, pitch range, loudness and tilt.
  * Expression (motion.py; coefficient numbers of the semantic layout),
    64 coefficients: 0..17 mouth, the rest face.
    Articulators 0..5 (jaw, lip-close, round, spread, lower-lip tuck,
    narrow) follow viseme targets with dominance-based coarticulation and
    anticipation; bilabials close the lips, F/V tuck the lower lip, rounded
    phones round them; the style's articulation gain scales their excursion
    and its coarticulation factor their smoothness. 6..9 (smile, frown,
    upper-lip raise, press) and 10..17 (a fixed mix of the articulators) are
    mouth-related too. 18/19 blink at the style's rate (Poisson). 20..26
    brows and eyes rise on pitch accents (style brow gain). Every static
    coefficient carries the style's offset: a person bias plus the emotion's
    offset scaled by the level. Per clip: a session offset, slow drift,
    tracking noise, target/gain/accent jitter.
  * Head pose: a style-specific low-pass random process per angle
    (amplitude, tempo), tremor, and nods on stressed syllables with a
    style-specific probability: correlated with the audio, not a function of
    it. Angles stay within +-0.3 rad; translations are small and follow the
    rotation (in the real space: rescaled to the real clips' spreads).
  * What makes it hard. Static offsets alone do not identify a style: the
    twin emotions angry/disgusted, happy/surprised, fear/sad and
    neutral/contempt share their offset for each person and differ only in
    dynamics (articulation gain, coarticulation, tempo and amplitude of head
    motion, tremor, blink rate, brow activity) and prosody. Levels scale
    offsets by lambda = 0.4/0.7/1.0 and raise the emotion's dynamic
    modifiers to the power lambda, plus an emphasis that grows with level
    (so even neutral's levels differ). Within a style every clip has its own
    sentence, timing, session offset, blinks, drift and noise.

Public API
  generate_corpus(out_dir, preset, seed, workers=None, progress=True,
    space="real")
  style_for(seed, person, emotion, level) -> Style
  render_expression(phones, style, num_frames, *, rng=None,
    space="semantic") -> [T, 64]  (the corpus passes space="real")
  render_pose(phones, style, num_frames, *, rng=None, space="semantic")
    -> [T, 6]
  face_model() -> the semantic layout's face (for the real space:
    saas_jax.face_model.load("mediapipe")): a FaceModel (68 landmarks, sets
    "keypoints68" and "lips4", edges jaw/brows/nose/eyes/lips; saas_jax/synthetic_face.py)
  plan_corpus(preset) -> [ClipSpec]; clip_utterance(seed, spec);
  render_clip(seed, spec, audio=True, space="real"); clip_style(seed, spec);
  style_transfer_pairs(specs, seed);
  transfer_target(seed, content, style, space="real");
  noise_free_expressions(out_dir, clip_ids) (the clips, stochastic parts off);
  load_manifest(out_dir); frame_labels(phones, num_frames) (phone per frame);
  base_phone('AA1') -> 'AA'; PHONE_NAMES, EMOTIONS, LEVELS, OFFSET_GROUP.
"""

import importlib
import importlib.util

# The package's names, each loaded from its module on first use (PEP 562):
# a process that imports one light part (version, styles, baselines) does
# not load the generator and SciPy with it.
_EXPORTS = {
  "corpus": (
    "PRESETS",
    "SPLITS",
    "ClipSpec",
    "Preset",
    "clip_id",
    "clip_style",
    "clip_utterance",
    "generate_corpus",
    "load_manifest",
    "noise_free_expressions",
    "parse_clip_id",
    "plan_corpus",
    "render_clip",
    "style_transfer_pairs",
    "transfer_target",
  ),
  "motion": ("render_expression", "render_pose"),
  "speech": (
    "PHONE_NAMES",
    "base_phone",
    "frame_labels",
    "plan_utterance",
    "synthesize",
  ),
  "styles": (
    "EMOTIONS",
    "LEVELS",
    "OFFSET_GROUP",
    "Style",
    "rng_for",
    "style_for",
  ),
  "version": ("GENERATOR_VERSION",),
}
_MODULE_OF = {name: mod for mod, names in _EXPORTS.items() for name in names}
__all__ = sorted([*_MODULE_OF, "face_model"])


def __getattr__(name: str):
  if name in _MODULE_OF:
    value = getattr(
      importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name
    )
  elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
    value = importlib.import_module(f"{__name__}.{name}")  # a submodule
  else:
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__():
  return sorted({*globals(), *__all__})


def face_model():
  """The synthetic face as a saas_jax FaceModel (imports JAX: on demand)."""
  from saas_jax import face_model as face_lib

  return face_lib.synthetic()
