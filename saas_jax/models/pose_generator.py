"""The cross-modal autoregressive pose generator G_p (reference §2.6, the
official FACTModel).

Given the 4 pose tokens of the past 32 frames, the MFCC windows of the next
32 frames and the style code s, it outputs logits over the pose codebook for
8 positions; positions 0..3 are the next 4 tokens.

  audio   [B, 32, 28, 12] -> per-frame CNN (conv 1->64->128, maxpool 3
          s(1,2), conv ->256->256->512, maxpool 3 s2; BN + ReLU) -> flatten
          12288 -> FC 2048 -> 256 (ReLU) -> Dense 400 + positions  = x_a
  style   [B, 256] -> Dense 400, repeated over the 32 frames + positions
          = x_b
  motion  (motion_dim > 0, not the official) the style clip's head motion:
          MotionEncoder over its 32-frame windows, averaged -> Dense 400,
          added to x_b
  speaker 2 cross-modal blocks (Q from x_a, K/V from LN(x_b), the residual
          updates x_b) -> temporal compressor 32 -> 4 (the VQ-VAE's
          squasher) -> Dense 200                           [B, 4, 200]
  past    Embedding(200 codes -> 200) + positions; only the last `keep`
          tokens are embedded (the others are zero), as the official
          masking does                                      [B, 4, 200]
  head    [past, speaker] + positions -> 5-layer transformer (hidden 200,
          10 heads, MLP 128) -> LayerNorm -> Dense(200, no bias)  [B, 8, 200]
  residual (residual_width > 0, not the official) the audio features of
          every frame -> PoseResidual -> the fine head motion no token
          codes (nods), added to the decoded pose            [B, T, 6]

Paper size: 33.4 M parameters, 27.8 M of them in the audio CNN's two FC
layers. The audio CNN runs per frame and sees nothing but its own 28 x 12
window, so a sampler computes it once per frame of an utterance
(audio_features) and reuses it for every step and sample (speaker_tokens,
predict): see saas_jax.sampling.

The official module also holds a 1-layer transformer over the past tokens,
used only when no mask is given, which neither its training nor its
sampling does; it is kept (keep=None runs it) so sizes match.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from saas_jax.models import layers
from saas_jax.models.pose_codebook import POSE_DIM

_INIT = nn.initializers.normal(0.02)  # official init of Linear / Embedding


class AudioCNN(nn.Module):
  """Per-frame MFCC encoder: [..., 28, 12] -> [..., out_dim]."""

  channels: tuple = (64, 128, 256, 256, 512)
  fc_hidden: int = 2048
  out_dim: int = 256

  @nn.compact
  def __call__(self, x, train: bool):
    lead = x.shape[:-2]
    h = x.reshape(-1, *x.shape[-2:], 1)  # [N, 28, 12, 1]

    def conv(h, features, i):
      h = nn.Conv(
        features,
        (3, 3),
        padding=((1, 1), (1, 1)),
        use_bias=False,
        name=f"conv{i}",
      )(h)
      h = nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        name=f"bn{i}",
      )(h)
      return nn.relu(h)

    h = conv(h, self.channels[0], 0)
    h = conv(h, self.channels[1], 1)
    h = nn.max_pool(h, (3, 3), (1, 2))  # [N, 26, 5, C]
    for i in (2, 3, 4):
      h = conv(h, self.channels[i], i)
    h = nn.max_pool(h, (3, 3), (2, 2))  # [N, 12, 2, C]
    h = h.reshape(h.shape[0], -1)  # [N, 24 C] (12288 at paper size)
    h = nn.relu(nn.Dense(self.fc_hidden, kernel_init=_INIT, name="fc0")(h))
    h = nn.relu(nn.Dense(self.out_dim, kernel_init=_INIT, name="fc1")(h))
    return h.reshape(*lead, self.out_dim)


class CrossModalBlock(nn.Module):
  """x_b + Attn(Q = x_a, K/V = LN(x_b)); x_b + MLP(LN(x_b)).

  Only the style stream x_b is normalised and updated; the audio stream is
  the (unnormalised) query of every block, as in the official code. There
  the style stream is one style vector repeated over the frames (+ a
  position code), so every key and value is nearly the same and the
  attention's output hardly depends on its audio queries: trained at cpu
  size, G_p's held-out perplexity did not change when the audio was
  shuffled across windows. audio_values=True swaps the roles (Q = LN(x_b),
  K/V = LN(x_a)): the style stream reads the audio.
  """

  dim: int
  heads: int
  mlp_dim: int
  attn_scale: str = "head"
  audio_values: bool = False

  @nn.compact
  def __call__(self, xa, xb):  # [B, T, D] each -> [B, T, D]
    head_dim = self.dim // self.heads
    shape = (self.heads, head_dim)
    h = nn.LayerNorm(epsilon=1e-5, name="ln_attn")(xb)
    dense = lambda name: nn.DenseGeneral(  # noqa: E731
      shape, use_bias=False, kernel_init=_INIT, name=name
    )
    if self.audio_values:
      ha = nn.LayerNorm(epsilon=1e-5, name="ln_audio")(xa)
      q, k, v = dense("query")(h), dense("key")(ha), dense("value")(ha)
    else:
      q, k, v = dense("query")(xa), dense("key")(h), dense("value")(h)
    scale = 1 / math.sqrt(head_dim if self.attn_scale == "head" else self.dim)
    out = jax.nn.dot_product_attention(q, k, v, scale=scale)
    xb = xb + nn.DenseGeneral(
      self.dim, axis=(-2, -1), kernel_init=_INIT, name="out"
    )(out)
    h = nn.LayerNorm(epsilon=1e-5, name="ln_mlp")(xb)
    h = nn.Dense(self.mlp_dim, kernel_init=_INIT, name="mlp_in")(h)
    h = nn.Dense(self.dim, kernel_init=_INIT, name="mlp_out")(
      nn.gelu(h, approximate=False)
    )
    return xb + h


class MotionEncoder(nn.Module):
  """A style clip's head motion -> a code: [..., 32, 6] windows (each about
  its own mean, in the pose codebook's std units) -> [..., dim].

  The expression's style code says little about how a style moves the
  head: on the default data, token histograms of the training clips
  nearest to a style clip by that code put motion nearer the asked style
  than the speaker's own in 57-60 % of pairs, of those nearest by the
  clip's head motion in 71-77 % (benchmarks/pose_baselines.py)."""

  dim: int
  width: int = 64

  @nn.compact
  def __call__(self, x):
    lead = x.shape[:-2]
    h = x.reshape(-1, *x.shape[-2:])  # [N, 32, 6]
    h = jnp.concatenate([h, jnp.diff(h, axis=1, prepend=h[:, :1])], -1)
    for i in range(2):
      h = nn.gelu(nn.Conv(self.width, (5,), name=f"conv{i}")(h))
    h = nn.Dense(self.dim, name="out")(h.mean(1))  # [N, dim]
    return h.reshape(*lead, self.dim)


class PoseResidual(nn.Module):
  """Per-frame audio features -> the head motion finer than a pose token:
  [B, T, audio_dim] -> [B, T, 6] in the pose codebook's std units.

  A nod moves the pitch by about 3 mrad where the default codebook's angle
  error is 14 mrad, so real poses coded and decoded keep none of their
  onset-locked nods (benchmarks/pose_floor.py), and no token sequence can
  make them. This regresses what the codebook leaves out (pose minus its
  decoded tokens) on the audio; its conditional mean is the motion locked
  to the speech. Dilated convolutions see +-30 frames; the output starts
  at zero."""

  width: int
  kernel: int = 5
  dilations: tuple = (1, 2, 4, 8)

  @nn.compact
  def __call__(self, feats):
    h = nn.Dense(self.width, name="in")(feats)  # [B, T, width]
    for i, d in enumerate(self.dilations):
      conv = nn.Conv(
        self.width, (self.kernel,), kernel_dilation=d, name=f"conv{i}"
      )
      h = h + nn.gelu(conv(h))
    out = nn.Dense(POSE_DIM, kernel_init=nn.initializers.zeros, name="out")
    return out(h)  # [B, T, 6]


class PoseGenerator(nn.Module):
  num_codes: int = 200
  window: int = 32  # frames of audio per step (and of the past)
  factor: int = 3  # window / 2**factor = 4 tokens
  conv_channels: tuple = (64, 128, 256, 256, 512)
  fc_hidden: int = 2048
  audio_dim: int = 256
  speaker_dim: int = 400
  speaker_layers: int = 2
  speaker_heads: int = 10
  speaker_mlp: int = 128
  dim: int = 200
  layers: int = 5
  heads: int = 10
  mlp_dim: int = 128
  past_layers: int = 1
  attn_scale: str = "head"  # "hidden": the official 1/sqrt(hidden)
  audio_values: bool = False  # CrossModalBlock; False: the official roles
  # Width of the motion code: the style clip's own head motion, encoded
  # by MotionEncoder and added to the style stream. 0: none (official;
  # the style code of the clip's expression is the only style input).
  motion_dim: int = 0
  # Width of PoseResidual, the audio-driven motion finer than a token. 0:
  # none (official: the pose is its decoded tokens alone).
  residual_width: int = 0

  @property
  def num_tokens(self) -> int:
    return self.window // 2**self.factor

  def setup(self):
    n = self.num_tokens
    self.audio_cnn = AudioCNN(
      self.conv_channels, self.fc_hidden, self.audio_dim
    )
    self.audio_proj = nn.Dense(self.speaker_dim, kernel_init=_INIT)
    self.audio_pos = self.param(
      "audio_pos", nn.initializers.zeros, (self.window, self.speaker_dim)
    )
    self.style_proj = nn.Dense(self.speaker_dim, kernel_init=_INIT)
    self.style_pos = self.param(
      "style_pos", nn.initializers.zeros, (self.window, self.speaker_dim)
    )
    if self.motion_dim:
      self.motion_encoder = MotionEncoder(self.motion_dim)
      self.motion_proj = nn.Dense(self.speaker_dim, kernel_init=_INIT)
    self.speaker_blocks = [
      CrossModalBlock(
        self.speaker_dim,
        self.speaker_heads,
        self.speaker_mlp,
        self.attn_scale,
        self.audio_values,
      )
      for _ in range(self.speaker_layers)
    ]
    self.compressor = layers.Squasher(self.speaker_dim, self.factor)
    self.speaker_out = nn.Dense(self.dim, kernel_init=_INIT)
    self.token_embed = nn.Embed(self.num_codes, self.dim, embedding_init=_INIT)
    self.past_pos = self.param("past_pos", nn.initializers.zeros, (n, self.dim))
    self.past_transformer = layers.Transformer(
      self.dim, self.past_layers, self.heads, self.mlp_dim, n, self.attn_scale
    )
    self.transformer = layers.Transformer(
      self.dim, self.layers, self.heads, self.mlp_dim, 2 * n, self.attn_scale
    )
    self.out_norm = nn.LayerNorm(epsilon=1e-5)
    self.logits = nn.Dense(self.num_codes, use_bias=False, kernel_init=_INIT)
    if self.residual_width:
      self.residual_net = PoseResidual(self.residual_width)

  def audio_features(self, mfcc, train: bool = False):
    """[B, T, 28, 12] -> [B, T, audio_dim]; any T, frames independent."""
    return self.audio_cnn(mfcc, train)

  def pose_residual(self, feats):
    """[B, T, audio_dim] audio features (audio_features) -> [B, T, 6]:
    the fine motion, in the pose codebook's std units (residual_width >
    0)."""
    return self.residual_net(feats)

  def motion_code(self, windows):
    """[B, W, 32, 6] normalised motion windows (sampling.motion_windows)
    of the style clip -> [B, motion_dim], the mean over its windows."""
    return self.motion_encoder(windows).mean(1)

  def speaker_tokens(self, feats, style, train: bool = False, motion=None):
    """[B, 32, audio_dim] window features, [B, S] style (and [B,
    motion_dim] motion code when motion_dim > 0) -> [B, 4, dim]."""
    xa = self.audio_proj(feats) + self.audio_pos  # [B, 32, Ds]
    xb = self.style_proj(style)[:, None] + self.style_pos  # [B, 32, Ds]
    if self.motion_dim:
      xb = xb + self.motion_proj(motion)[:, None]
    for block in self.speaker_blocks:
      xb = block(xa, xb)
    return self.speaker_out(self.compressor(xb, train))  # [B, 4, dim]

  def predict(self, past, keep, speaker):
    """past [B, 4] int, keep [B] int (None: all, unmasked) -> [B, 8, K].

    keep = k embeds only the last k past tokens (0: none); the queries of
    the other past positions see no past keys (the official row mask).
    """
    n = past.shape[1]
    emb = self.token_embed(past)  # [B, n, dim]
    if keep is None:
      h, mask = self.past_transformer(emb + self.past_pos), None
    else:
      kept = jnp.arange(n)[None] >= n - keep[:, None]  # [B, n]
      h = jnp.where(kept[..., None], emb, 0.0) + self.past_pos
      if self.is_initializing():
        self.past_transformer(h)  # create its parameters
      i = jnp.arange(2 * n)
      past_pair = (i[:, None] < n) & (i[None, :] < n)  # [2n, 2n]
      q_kept = jnp.concatenate([kept, jnp.ones_like(kept)], 1)  # [B, 2n]
      mask = ~past_pair[None] | q_kept[:, :, None]  # [B, 2n, 2n]
      mask = mask[:, None]  # [B, 1, 2n, 2n] (heads)
    x = jnp.concatenate([h, speaker], axis=1)  # [B, 2n, dim]
    x = self.transformer(x, mask)
    return self.logits(self.out_norm(x))  # [B, 2n, K]

  def __call__(
    self, mfcc, style, past, keep, train: bool = False, motion_windows=None
  ):
    """mfcc [B, 32, 28, 12], style [B, S], past [B, 4], keep [B] (and the
    style clip's motion windows [B, W, 32, 6] when motion_dim > 0) ->
    logits [B, 8, K]."""
    feats = self.audio_features(mfcc, train)
    if self.residual_width and self.is_initializing():
      self.pose_residual(feats)  # create its parameters
    return self._logits(feats, style, past, keep, train, motion_windows)

  def with_residual(
    self, mfcc, style, past, keep, train: bool = False, motion_windows=None
  ):
    """As __call__ with mfcc [B, T >= 32, 28, 12] (the step's window: the
    last 32 frames) -> (logits [B, 8, K], residual [B, T, 6]); one pass of
    the audio CNN serves both."""
    feats = self.audio_features(mfcc, train)  # [B, T, A]
    logits = self._logits(
      feats[:, -self.window :], style, past, keep, train, motion_windows
    )
    return logits, self.pose_residual(feats)

  def _logits(self, feats, style, past, keep, train, motion_windows):
    motion = None
    if self.motion_dim:
      motion = self.motion_code(motion_windows)
    speaker = self.speaker_tokens(feats, style, train, motion)
    return self.predict(past, keep, speaker)
