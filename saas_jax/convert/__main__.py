"""python -m saas_jax.convert <kind> --checkpoint FILE --out DIR

  pirender             --checkpoint PIRender's *_checkpoint.pt, StyleTalk's
                       renderer_checkpoint.pt, or a bare state dict
                       (.pt/.pth/.safetensors)  -> a renderer folder for
                       `generate --renderer pirender:DIR`
  saas_video_driven    --checkpoint the official SAAS video-driven .pth
                       -> a video-driven run folder (`generate --driver
                       video --expression_run DIR`)
  sadtalker_audio2exp  --checkpoint SadTalker's auido2exp_00300-model.pth
                       or SadTalker_V0.0.2_*.safetensors, --video_run a
                       converted video-driven run -> an audio-driven run

The output folder appears only when the conversion is complete; an existing
non-empty --out is refused. Exit status 2 with a message naming the file and
the tensor on any mismatch.
"""

import argparse
import sys

from saas_jax.convert import tensors

KINDS = ("pirender", "saas_video_driven", "sadtalker_audio2exp")


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    prog="python -m saas_jax.convert",
    description=__doc__.split("\n\n")[1],
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  p.add_argument("kind", choices=KINDS)
  p.add_argument("--checkpoint", required=True, help="the PyTorch file")
  p.add_argument("--out", required=True, help="the folder to write (new)")
  p.add_argument(
    "--video_run",
    help="sadtalker_audio2exp: the converted video-driven run it completes",
  )
  args = p.parse_args(argv)
  if args.kind == "sadtalker_audio2exp" and not args.video_run:
    p.error("sadtalker_audio2exp needs --video_run (a converted SAAS run)")
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    if args.kind == "pirender":
      from saas_jax.convert import pirender

      pirender.convert(args.checkpoint, args.out)
    elif args.kind == "saas_video_driven":
      from saas_jax.convert import saas

      summary = saas.convert_saas_video_driven(args.checkpoint, args.out)
      print(f"saas_video_driven: {summary}")
    else:
      from saas_jax.convert import saas

      summary = saas.convert_sadtalker_audio2exp(
        args.checkpoint, args.video_run, args.out
      )
      print(f"sadtalker_audio2exp: {summary}")
  except tensors.ConvertError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
