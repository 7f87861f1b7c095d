"""The multi-task style VQ-VAE: style codebook C_s, encoder E_s, decoder D_s,
attention pooling f_s and style classifier f_c.

A 32-frame expression window is encoded to 4 tokens, quantized against the
500-code style codebook, pooled by self-attention into the style code
s in R^256, and decoded back to the window. Three tasks train it together:
reconstruction (+ VQ), style classification of s, and a triplet loss on s.
Downstream stages use `style_code` (encoder + quantizer + pooling), frozen.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from saas_jax.models import vqvae


class AttentionPooling(nn.Module):
  """softmax over tokens of H @ w, then the weighted sum of the tokens."""

  @nn.compact
  def __call__(self, h):  # [B, N, D] -> [B, D]
    w = self.param("w", nn.initializers.normal(0.02), (h.shape[-1],))
    attn = jax.nn.softmax(h @ w, axis=-1)  # [B, N]
    return jnp.einsum("bn,bnd->bd", attn, h)


class StyleCodebook(nn.Module):
  num_classes: int
  vq: vqvae.SequenceVQVAE = vqvae.SequenceVQVAE()
  # Per factor (person, emotion, level), the value of every class; see
  # `classify`. () leaves f_c the official plain linear layer.
  class_factors: tuple[tuple[int, ...], ...] = ()

  def setup(self):
    self.pool = AttentionPooling()
    self.classifier = nn.Dense(self.num_classes)
    self.factor_heads = [
      nn.Dense(max(values) + 1, use_bias=False) for values in self.class_factors
    ]

  def classify(self, style):  # [B, 256] -> [B, classes]
    """f_c. With class_factors, class k's weight vector is its own plus one
    per factor value of k: all classes of an emotion share a direction learnt
    from all of their clips (still one linear layer, W = W_k + sum_f U_f)."""
    logits = self.classifier(style)
    for head, values in zip(self.factor_heads, self.class_factors, strict=True):
      logits = logits + jnp.take(head(style), jnp.asarray(values), axis=-1)
    return logits

  def style_code(self, exp, train: bool = False, quantize: bool = True):
    # [B, 32, 64] -> [B, 256]. quantize=False pools the encoder's continuous
    # tokens (the "continuous style codes" ablation of later stages).
    z = self.vq.encode(exp, train)
    if quantize:
      z, _ = self.vq.quantize(z, train)
    return self.pool(z)

  def __call__(self, exp, train: bool = False, decode: int | None = None):
    # decode=n reconstructs only the first n windows (the decoder is most of
    # the model's work; all windows are still encoded, pooled, classified).
    zq, aux = self.vq.quantize(self.vq.encode(exp, train), train)
    recon = self.vq.decode(zq if decode is None else zq[:decode], train)
    style = self.pool(zq)
    return {
      "recon": recon,  # [B or decode, 32, 64]
      "style": style,  # [B, 256]
      "logits": self.classify(style),  # [B, classes]
      **aux,
    }
