"""Motion decoder D: [y ++ s_t] -> 64 expression coefficients.

MLP 480 -> 720 -> 1080 (ReLU), then a mouth head (18) and a head for the
rest (46), concatenated in that order: exp[0:18] is the mouth.
`styled=False` drops s_t from its input (the official decoder has it), so
that style reaches the output through the adapter's style branch only.
"""

import flax.linen as nn
import jax.numpy as jnp

MOUTH = 18


class MotionDecoder(nn.Module):
  dims: tuple[int, ...] = (480, 720, 1080)
  out_dim: int = 64
  styled: bool = True

  @nn.compact
  def __call__(self, y, s_t):  # [B, T, H], [B, S] -> [B, T, 64]
    h = y
    if self.styled:
      s = jnp.broadcast_to(s_t[:, None], (*y.shape[:2], s_t.shape[-1]))
      h = jnp.concatenate([y, s], -1)
    for d in self.dims:
      h = nn.relu(nn.Dense(d)(h))
    mouth = nn.Dense(MOUTH, name="mouth")(h)
    rest = nn.Dense(self.out_dim - MOUTH, name="rest")(h)
    return jnp.concatenate([mouth, rest], -1)
