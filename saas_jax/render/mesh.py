"""Triangle meshes for the face models the preview draws.

A FaceModel holds points; drawing it filled needs triangles, and a look:
  BFM_model_front.mat     its own `tri` (35,709 points, 70,789 triangles)
  MediaPipe 468 basis     the FaceMesh tessellation (852 triangles), read
                          back from its edge list
  68 keypoints            a Delaunay triangulation of the mean shape (the
                          synthetic face, or any 68-point basis)
Mouth and eye openings stay holes, so the dark background shows through
them: a parting of the lips or a blink is visible at a glance.
"""

import collections
import dataclasses

import numpy as np
import scipy.spatial

from saas_jax import face_model as face_lib

SKIN = (0.86, 0.70, 0.60)
LIPS = (0.72, 0.36, 0.36)
BROWS = (0.42, 0.32, 0.28)

# iBUG 68 holes: inner lips, left eye, right eye.
_HOLES_68 = (tuple(range(60, 68)), tuple(range(36, 42)), tuple(range(42, 48)))
_LIPS_68 = range(48, 68)
_BROWS_68 = range(17, 27)


@dataclasses.dataclass(frozen=True, eq=False)
class Mesh:
  face: face_lib.FaceModel
  triangles: np.ndarray  # [F, 3], counter-clockwise seen from the front
  albedo: np.ndarray  # [F, 3, 3] each triangle's corner colours in [0, 1]


def triangles_from_edges(edges: np.ndarray) -> np.ndarray:
  """A triangulated surface's faces from its edge list: the 3-cliques of
  the edge graph, less the few cliques that are not faces (three faces
  around a vertex of degree 3 close one: all its edges are then used by
  three cliques)."""
  adj = collections.defaultdict(set)
  for a, b in {tuple(sorted(map(int, e))) for e in edges}:
    adj[a].add(b)
    adj[b].add(a)
  cliques = {
    tuple(sorted((a, b, c)))
    for a in adj
    for b in adj[a]
    if b > a
    for c in adj[a] & adj[b]
  }
  uses = collections.Counter()
  for a, b, c in cliques:
    uses.update([(a, b), (a, c), (b, c)])
  faces = [
    t
    for t in cliques
    if min(uses[(t[0], t[1])], uses[(t[0], t[2])], uses[(t[1], t[2])]) < 3
  ]
  return np.asarray(sorted(faces), np.int64).reshape(-1, 3)


def _delaunay_68(mean: np.ndarray) -> np.ndarray:
  tri = scipy.spatial.Delaunay(mean[:, :2]).simplices
  holes = [set(h) for h in _HOLES_68]
  keep = [t for t in tri if not any(set(t) <= h for h in holes)]
  return np.asarray(keep, np.int64)


def _orient(tri: np.ndarray, mean: np.ndarray) -> np.ndarray:
  """Counter-clockwise seen from the camera (+z) at the mean shape."""
  p = mean[tri]  # [F, 3, 3]
  normal_z = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])[:, 2]
  flip = normal_z < 0
  tri = tri.copy()
  tri[flip] = tri[flip][:, ::-1]
  return tri


def build(face: face_lib.FaceModel) -> Mesh:
  """Triangles and colours: dense meshes blend part colours across the
  triangles at a part's edge (per-vertex colours); on the coarse 68-point
  mesh a triangle takes a part's colour only when all its corners are in it."""
  n = face.num_points
  vertex = np.tile(np.asarray(SKIN, np.float32), (n, 1))
  per_vertex = True
  if "triangles" in face.edges:
    tri = np.asarray(face.edges["triangles"], np.int64)
  elif "tessellation" in face.edges:
    tri = triangles_from_edges(face.edges["tessellation"])
    for part, color in (
      ("lips", LIPS),
      ("left_eyebrow", BROWS),
      ("right_eyebrow", BROWS),
    ):
      if part in face.edges:
        vertex[np.unique(face.edges[part])] = color
  elif n == 68:
    tri = _delaunay_68(face.mean_shape)
    vertex[list(_LIPS_68)] = LIPS
    vertex[list(_BROWS_68)] = BROWS
    per_vertex = False
  else:
    tri = scipy.spatial.Delaunay(face.mean_shape[:, :2]).simplices
  if not len(tri):
    raise ValueError(f"{face.name}: no triangles to draw")
  tri = _orient(tri, face.mean_shape)
  albedo = vertex[tri]  # [F, 3, 3]
  if not per_vertex:
    whole = np.all(albedo == albedo[:, :1], axis=(1, 2))
    albedo[~whole] = SKIN
  return Mesh(face, tri, albedo)
