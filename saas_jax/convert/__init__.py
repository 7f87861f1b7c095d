"""PyTorch checkpoints -> saas_jax: `python -m saas_jax.convert <kind>`.

  pirender             PIRender / StyleTalk renderer -> render.pirender
  saas_video_driven    official SAAS video-driven model -> a video-driven run
  sadtalker_audio2exp  SadTalker's audio2exp + a converted video-driven run
                       -> an audio-driven run

Files are read with torch.load(weights_only=True) (no code from the file
runs) or as .safetensors; every tensor is accounted for (see tensors.py).
"""
