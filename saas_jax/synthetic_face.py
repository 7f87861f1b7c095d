"""A 68-landmark 3D face whose expression basis speaks the generator's roles.

The corpus's coefficients mean something only through a face; this one makes
their roles visible so that landmark metrics (lip gaps, eye closure, brow
height) and landmark videos work on synthetic data as they do on BFM fits.
The points follow the iBUG 68 layout (0-16 jaw, 17-26 brows, 27-35 nose,
36-47 eyes, 48-59 outer lips, 60-67 inner lips) in the canonical frame: x
right, y up, z towards the camera, centred at the origin, 1.44 units wide.

At zero expression the lips are just parted (inner gap 0.02). Per unit
coefficient: jaw-open (0) lowers the lower lip and chin (inner gap +0.13),
lip-close (1) brings the inner lips together (-0.055), round (2) pulls the
corners in and the lips forward, spread (3) pulls them out, tuck (4) raises
the lower lip to the teeth, narrow (5) half-closes the jaw, smile/frown (6/7)
move the corners up/down, 8 raises the upper lip, 9 thins both lips, 10..17
are small mouth deformations (the secondary coefficients), blinks (18/19)
bring each upper lid onto the lower one at 1.0, brow coefficients (20..22)
raise inner/outer brows or lower and knit them, 23..26 widen/squint the eyes,
raise the cheeks, wrinkle the nose, and 27..63 are small smooth deformations
of the whole face. The identity basis (80) is smooth and small.
"""

import functools
import itertools

import numpy as np

NUM_POINTS = 68
JAW = np.arange(0, 17)
BROW_L, BROW_R = np.arange(17, 22), np.arange(22, 27)
NOSE_BRIDGE, NOSTRILS = np.arange(27, 31), np.arange(31, 36)
EYE_L, EYE_R = np.arange(36, 42), np.arange(42, 48)
LIPS_OUTER, LIPS_INNER = np.arange(48, 60), np.arange(60, 68)
LIPS4 = np.array([51, 57, 62, 66])


def _mean_shape() -> np.ndarray:
  pts = np.zeros((NUM_POINTS, 3))
  phi = np.pi + np.pi * np.arange(17) / 16
  pts[JAW, 0] = 0.72 * np.cos(phi)
  pts[JAW, 1] = 0.2 + 1.15 * np.sin(phi)
  k = np.arange(5) / 4
  pts[BROW_L, 0] = -0.6 + 0.48 * k
  pts[BROW_L, 1] = 0.47 + 0.06 * np.sin(np.pi * (0.3 + 0.7 * k))
  pts[BROW_R, 0] = -pts[BROW_L[::-1], 0]
  pts[BROW_R, 1] = pts[BROW_L[::-1], 1]
  pts[NOSE_BRIDGE, 1] = [0.32, 0.2, 0.08, -0.04]
  pts[NOSTRILS, 0] = [-0.14, -0.07, 0.0, 0.07, 0.14]
  pts[NOSTRILS, 1] = [-0.12, -0.14, -0.15, -0.14, -0.12]
  # Both eyes: outer/inner corner, two upper-lid and two lower-lid points in
  # iBUG order (36 outer .. 39 inner; 42 inner .. 45 outer).
  eye = np.array(
    [
      [-0.12, 0.0],
      [-0.04, 0.045],
      [0.04, 0.045],
      [0.12, 0.0],
      [0.04, -0.04],
      [-0.04, -0.04],
    ]
  )
  pts[EYE_L, :2] = eye + np.array([-0.32, 0.28])
  pts[EYE_R, :2] = eye + np.array([0.32, 0.28])
  pts[LIPS_OUTER, 0] = [
    *[-0.25, -0.16, -0.06, 0.0, 0.06, 0.16, 0.25],
    *[0.16, 0.07, 0.0, -0.07, -0.16],
  ]
  pts[LIPS_OUTER, 1] = [
    *[-0.42, -0.36, -0.325, -0.335, -0.325, -0.36, -0.42],
    *[-0.5, -0.53, -0.54, -0.53, -0.5],
  ]
  pts[LIPS_INNER, 0] = [-0.2, -0.08, 0.0, 0.08, 0.2, 0.08, 0.0, -0.08]
  pts[LIPS_INNER, 1] = [-0.42, -0.41, -0.41, -0.41, -0.42, -0.43, -0.43, -0.43]
  x = pts[:, 0]
  pts[:, 2] = 0.5 * np.sqrt(np.clip(1 - (x / 0.8) ** 2, 0, 1))
  pts[NOSE_BRIDGE, 2] += [0.05, 0.12, 0.2, 0.28]
  pts[NOSTRILS, 2] += [0.08, 0.12, 0.15, 0.12, 0.08]
  pts[LIPS_OUTER, 2] += 0.06
  pts[LIPS_INNER, 2] += 0.04
  return pts - pts.mean(axis=0)


def _smooth_fields(rng, count: int, pts: np.ndarray, scale: float):
  """[count, N, 3] smooth random deformations (quadratics in x, y)."""
  x, y = pts[:, 0], pts[:, 1]
  feats = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)
  coef = rng.normal(0, 1, (count, 6, 3))
  fields = np.einsum("nf,cfd->cnd", feats, coef)
  fields /= fields.std(axis=(1, 2), keepdims=True)
  return fields * scale


def _exp_basis(pts: np.ndarray) -> np.ndarray:
  b = np.zeros((64, NUM_POINTS, 3))
  # 0 jaw open: lower lip and chin down.
  b[0, [55, 56, 57, 58, 59], 1] = [-0.09, -0.115, -0.12, -0.115, -0.09]
  b[0, [65, 66, 67], 1] = [-0.125, -0.13, -0.125]
  b[0, [48, 54], 1] = -0.05
  b[0, [60, 64], 1] = -0.055
  b[0, 55:60, 2] = -0.02
  chin = np.maximum(0.0, -np.sin(np.pi + np.pi * np.arange(17) / 16)) ** 2
  b[0, JAW, 1] = -0.13 * chin
  # 1 lip close: inner lips meet.
  b[1, [61, 62, 63], 1] = [-0.02, -0.025, -0.02]
  b[1, [65, 66, 67], 1] = [0.026, 0.03, 0.026]
  b[1, [50, 51, 52], 1] = -0.008
  b[1, [56, 57, 58], 1] = 0.015
  # 2 round: corners in, lips forward, mid slightly open.
  b[2, [48, 60], 0] = [0.05, 0.045]
  b[2, [54, 64], 0] = [-0.05, -0.045]
  b[2, [49, 59], 0] = 0.025
  b[2, [53, 55], 0] = -0.025
  b[2, 48:68, 2] = 0.04
  b[2, [51, 62], 1] = [0.01, 0.005]
  b[2, [57, 66], 1] = [-0.01, -0.005]
  # 3 spread: corners out and a little up.
  b[3, [48, 60], 0] = -0.04
  b[3, [54, 64], 0] = 0.04
  b[3, [48, 60, 54, 64], 1] = 0.01
  b[3, [49, 59], 0] = -0.02
  b[3, [53, 55], 0] = 0.02
  b[3, [62], 1] = -0.0025
  b[3, [66], 1] = 0.0025
  # 4 lower-lip tuck (F, V): lower lip up and back.
  b[4, 55:60, 1] = 0.04
  b[4, 55:60, 2] = -0.03
  b[4, 65:68, 1] = 0.035
  # 5 narrow (sibilants): jaw half closes, corners out a little.
  b[5, 55:60, 1] = 0.01
  b[5, 65:68, 1] = 0.01
  b[5, [48, 60], 0] = -0.01
  b[5, [54, 64], 0] = 0.01
  # 6 smile.
  b[6, [48, 60], 0] = [-0.035, -0.03]
  b[6, [54, 64], 0] = [0.035, 0.03]
  b[6, [48, 54, 60, 64], 1] = [0.04, 0.04, 0.035, 0.035]
  b[6, [49, 53], 1] = 0.02
  b[6, [59, 55], 1] = 0.015
  b[6, [31, 35], 1] = 0.01
  b[6, [40, 41, 46, 47], 1] = 0.008
  # 7 frown.
  b[7, [48, 54], 1] = -0.035
  b[7, [60, 64], 1] = -0.03
  b[7, [59, 55], 1] = -0.015
  # 8 upper lip raise.
  b[8, 49:54, 1] = 0.03
  b[8, 61:64, 1] = 0.025
  b[8, NOSTRILS, 1] = 0.01
  # 9 lip press.
  b[9, 50:53, 1] = -0.012
  b[9, 56:59, 1] = 0.012
  b[9, 48:68, 2] = -0.01
  # 10..17 secondary mouth deformations.
  rng = np.random.default_rng(68)
  mouth = np.r_[48:68]
  b[10:18, mouth] = rng.normal(0, 0.006, (8, mouth.size, 3))
  # 18/19 blinks: upper lid onto the lower lid.
  b[18, [37, 38], 1] = -0.075
  b[18, [40, 41], 1] = 0.01
  b[19, [43, 44], 1] = -0.075
  b[19, [46, 47], 1] = 0.01
  # 20 inner brow raise, 21 outer brow raise, 22 brow lower.
  b[20, [21, 22], 1] = 0.07
  b[20, [20, 23], 1] = 0.045
  b[20, [19, 24], 1] = 0.025
  b[20, [18, 25], 1] = 0.01
  b[20, [37, 38, 43, 44], 1] = 0.005
  b[21, [17, 26], 1] = 0.07
  b[21, [18, 25], 1] = 0.055
  b[21, [19, 24], 1] = 0.035
  b[21, [20, 23], 1] = 0.015
  b[22, 17:27, 1] = -0.04
  b[22, [21, 20], 0] = [0.02, 0.01]
  b[22, [22, 23], 0] = [-0.02, -0.01]
  # 23 eye widen, 24 squint, 25 cheek raise, 26 nose wrinkle.
  b[23, [37, 38, 43, 44], 1] = 0.02
  b[23, [40, 41, 46, 47], 1] = -0.005
  b[24, [40, 41, 46, 47], 1] = 0.02
  b[24, [37, 38, 43, 44], 1] = -0.01
  b[25, [40, 41, 46, 47], 1] = 0.01
  b[25, [48, 54], 1] = 0.01
  b[25, [31, 35], 1] = 0.005
  b[26, NOSTRILS, 1] = 0.02
  b[26, [29, 30], 1] = 0.008
  b[26, [21, 22], 1] = -0.01
  # 27..63 small smooth deformations of the whole face.
  b[27:] = _smooth_fields(rng, 64 - 27, pts, 0.004)
  return b


def edges() -> dict[str, np.ndarray]:
  """Index pairs to draw, by part."""

  def chain(idx, closed=False):
    idx = list(idx)
    pairs = list(itertools.pairwise(idx))
    if closed:
      pairs.append((idx[-1], idx[0]))
    return pairs

  return {
    name: np.asarray(pairs, np.int64)
    for name, pairs in (
      ("jaw", chain(JAW)),
      ("brows", chain(BROW_L) + chain(BROW_R)),
      ("nose", chain(NOSE_BRIDGE) + chain(NOSTRILS) + [(30, 33)]),
      ("eyes", chain(EYE_L, True) + chain(EYE_R, True)),
      ("lips", chain(LIPS_OUTER, True) + chain(LIPS_INNER, True)),
    )
  }


@functools.cache
def arrays():
  """(mean shape [68, 3], expression basis [64, 68, 3], identity basis
  [80, 68, 3]), float32; saas_jax.face_model.synthetic() wraps them."""
  pts = _mean_shape()
  exp_basis = _exp_basis(pts)
  id_basis = _smooth_fields(np.random.default_rng(80), 80, pts, 0.01)
  return (
    pts.astype(np.float32),
    exp_basis.astype(np.float32),
    id_basis.astype(np.float32),
  )
