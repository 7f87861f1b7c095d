"""python -m input_pipeline.synthetic --out_dir D --preset small --seed 0
[--space real] [--speech source_filter|espeak]"""

import argparse
import os
import sys
import time

from input_pipeline.synthetic import corpus
from saas_jax.errors import DataError


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m input_pipeline.synthetic",
    description="Writes the synthetic SAAS corpus (wav + PIRender .mat per "
    "clip, manifest.jsonl, corpus_info.json, style-transfer ground truth).",
  )
  parser.add_argument("--out_dir", required=True)
  parser.add_argument(
    "--preset", default="small", choices=sorted(corpus.PRESETS)
  )
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument(
    "--space",
    default=corpus.DEFAULT_SPACE,
    choices=corpus.SPACES,
    help="coefficient layout: real (Deep3DFaceRecon's expression space, "
    "calibrated on real clips) or semantic (the generator's own, version 1)",
  )
  parser.add_argument(
    "--speech",
    default=corpus.DEFAULT_SPEECH,
    choices=corpus.SPEECH_ENGINES,
    help="the voices: source_filter (speech.py, the default data's) or "
    "espeak (eSpeak NG, needs pip install espeakng-loader; the face follows "
    "its phone timing)",
  )
  parser.add_argument(
    "--workers",
    type=int,
    default=os.cpu_count() or 1,
    help="processes (default: all CPU cores)",
  )
  parser.add_argument(
    "--quiet", action="store_true", help="no progress bar on stderr"
  )
  args = parser.parse_args(argv)
  if args.workers < 1:
    parser.error("--workers must be at least 1")
  t0 = time.perf_counter()
  try:
    info = corpus.generate_corpus(
      args.out_dir,
      args.preset,
      args.seed,
      workers=args.workers,
      progress=not args.quiet,
      space=args.space,
      speech_engine=args.speech,
    )
  except (DataError, ImportError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print(
      "\ninterrupted: every file written so far is complete; run the same "
      "command again to finish the corpus",
      file=sys.stderr,
    )
    return 130
  print(
    f"{args.out_dir}: {info['num_clips']} clips "
    f"({', '.join(f'{k} {v}' for k, v in info['counts'].items())}), "
    f"{info['total_seconds'] / 60:.1f} min of speech, "
    f"{info['num_style_transfer_pairs']} style-transfer pairs, "
    f"{time.perf_counter() - t0:.1f} s",
    file=sys.stderr,
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
