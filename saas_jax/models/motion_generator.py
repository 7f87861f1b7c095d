"""The residual motion generator: content encoder -> residual adapter ->
decoder, for audio-driven (E_a) or video-driven (E_v) style transfer.

  z   = E(content, s_src)              [B, T, 64]   content, source style out
  y   = phi_c(z) + phi_s(z, s_t)       [B, T, H]    HyperStyle in phi_s
  exp = D(y, s_t)                      [B, T, 64]   target style in

Every part but the adapter works frame by frame, and the adapter carries
LSTM states, so `stylize` runs an utterance of any length in one pass or in
chunks (pass the carry on) with the same result.
"""

import flax.linen as nn

from saas_jax.models import audio_encoder, motion_decoder, residual_adapter

MEL_NORMS = ("none", "clip_mean")


class MotionGenerator(nn.Module):
  driver: str = "audio"  # "audio": E_a over mel; "video": E_v over exp
  hidden: int = 64
  hyperstyle: bool = True
  style_branch: bool = True
  mel_width: float = 1.0  # < 1: narrower convolutions (CPU runs)
  mel_residual: bool = True  # False: E_a's CNN without its residual blocks
  hyper_width: float = 1.0
  hyper_norm: str = "batch"
  hyper_gate: bool = False
  content_skip: bool = False  # y += W z (residual_adapter.py)
  decoder_dims: tuple[int, ...] = (480, 720, 1080)
  decoder_style: bool = True  # False: D(y) without s_t
  # "clip_mean": every mel window minus source["mel_mean"], its clip's
  # per-band mean (features.clip_mel_mean); "none": as is (official)
  mel_norm: str = "none"

  def setup(self):
    if self.driver == "audio":
      self.encoder = audio_encoder.AudioEncoder(
        self.mel_width, self.mel_residual
      )
    elif self.driver == "video":
      self.encoder = audio_encoder.VideoEncoder()
    else:
      raise ValueError(f"driver must be 'audio' or 'video', not {self.driver}")
    if self.mel_norm not in MEL_NORMS:
      raise ValueError(f"mel_norm must be one of {MEL_NORMS}: {self.mel_norm}")
    self.adapter = residual_adapter.ResidualAdapter(
      self.hidden,
      hyperstyle=self.hyperstyle,
      style_branch=self.style_branch,
      hyper_width=self.hyper_width,
      hyper_norm=self.hyper_norm,
      hyper_gate=self.hyper_gate,
      content_skip=self.content_skip,
    )
    self.decoder = motion_decoder.MotionDecoder(
      tuple(self.decoder_dims), styled=self.decoder_style
    )

  def content(self, source: dict, s_src, train: bool = False):
    """audio: source = {mel [B,T,80,16], ref_exp [B,64], blink [B,T],
    mel_mean [B,80] (read with mel_norm="clip_mean")};
    video: source = {exp [B,T,64]}  ->  z [B, T, 64]."""
    if self.driver == "audio":
      mel = source["mel"]
      if self.mel_norm == "clip_mean":
        if "mel_mean" not in source:
          raise ValueError(
            'mel_norm="clip_mean" needs source["mel_mean"] [B, 80], '
            "features.clip_mel_mean of each clip's windows"
          )
        mel = mel - source["mel_mean"][:, None, :, None]
      return self.encoder(mel, source["ref_exp"], source["blink"], s_src, train)
    return self.encoder(source["exp"], s_src)

  def stylize(
    self, z, s_t, carry=None, train: bool = False, canonical_only=False
  ):
    """z [B, T, 64], s_t [B, S] -> (exp [B, T, 64], carry)."""
    y, carry = self.adapter(z, s_t, carry, train, canonical_only)
    return self.decoder(y, s_t), carry

  def __call__(self, source: dict, s_src, s_t, train: bool = False):
    z = self.content(source, s_src, train)
    return self.stylize(z, s_t, None, train)[0]
