"""PIRender in Flax: parity with a PyTorch reference on the same weights,
the converter in every checkpoint layout, the renderer's windows and the
photoreal generate path.

The PyTorch reference (tests/torch_pirender.py) is written from PIRender's
architecture facts with its state-dict names; torch is a development
requirement (the `[torch]` extra for users).
"""

import json
import os

import conftest
import jax
import numpy as np
import pytest
import soundfile

from saas_jax.convert import pirender as convert_lib
from saas_jax.convert import tensors
from saas_jax.errors import DataError
from saas_jax.render import pirender, video

torch = pytest.importorskip("torch")
torch_pirender = pytest.importorskip("torch_pirender")

# A small generator for the paths whose numerics the full-size parity test
# already covers (windows, batching, files, the CLI): same code, 256 x 256.
SMALL = dict(
  descriptor=16, warp_base=4, edit_base=4, max_channels=8, res_blocks=1
)


@pytest.fixture(scope="module")
def torch_net():
  torch.set_num_threads(2)
  # Flow head scaled up: flows of tens of pixels exercise every branch of
  # the bilinear sampling, including samples outside the image.
  return torch_pirender.random_generator(0, scale=30.0)


@pytest.fixture(scope="module")
def state_dict(torch_net):
  return {k: v.detach().numpy() for k, v in torch_net.state_dict().items()}


@pytest.fixture(scope="module")
def small_renderer():
  model = pirender.FaceGenerator(**SMALL)
  params = jax.jit(model.init)(
    jax.random.key(1),
    np.zeros((1, 256, 256, 3), np.float32),
    np.zeros((1, pirender.WINDOW, pirender.DRIVING_DIM), np.float32),
  )["params"]
  return pirender.Renderer(params, model, batch=2)


def _to_nchw(x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


def test_warp_matches_torch_grid_sample():
  rng = np.random.default_rng(0)
  image = rng.normal(size=(2, 20, 24, 3))
  # Flows reaching beyond the border (zero padding) and sub-pixel ones.
  flow = 4 * rng.normal(size=(2, 6, 5, 2))
  ref = torch_pirender.warp(_to_nchw(image), _to_nchw(flow))
  ref = ref.permute(0, 2, 3, 1).numpy()
  assert np.abs(ref).max() > 0.5  # not an all-zero (fully outside) sample
  # In float64 the two agree to rounding: the same formula, edges included.
  warp = jax.jit(pirender.warp)
  with jax.enable_x64(True):
    ours = np.asarray(warp(image, flow))
  assert ours.dtype == np.float64
  np.testing.assert_allclose(ours, ref, atol=1e-12)
  # In float32, rounding of the sampling position times the image's steps.
  ours = np.asarray(warp(image.astype("f4"), flow.astype("f4")))
  np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_face_generator_parity_with_torch(torch_net, state_dict):
  assert len(state_dict) == 304
  assert sum(v.size for v in state_dict.values()) == 22_519_109
  params, n = convert_lib.convert_state_dict(state_dict, "random weights")
  assert n == 22_519_109
  rng = np.random.default_rng(0)
  image = rng.uniform(-1, 1, (1, 256, 256, 3)).astype(np.float32)
  driving = rng.normal(size=(1, 27, 73)).astype(np.float32)
  out = pirender.Renderer(params).forward(image, driving)
  with torch.no_grad():
    ref = torch_net(_to_nchw(image), torch.from_numpy(driving).permute(0, 2, 1))
  flow = ref["flow_field"].permute(0, 2, 3, 1).numpy()
  assert np.abs(flow).max() > 10  # flows of many pixels
  diffs = {}
  for key in ("flow_field", "warp_image", "fake_image"):
    want = ref[key].permute(0, 2, 3, 1).numpy()
    assert out[key].shape == want.shape
    diffs[key] = float(np.abs(np.asarray(out[key]) - want).max())
  print("max abs differences:", diffs)
  assert diffs["fake_image"] <= 1e-3
  # The warp resamples a noise image: flow differences of ~1e-4 px meet
  # pixel-to-pixel steps of up to 2.
  assert diffs["warp_image"] <= 2e-3
  assert np.abs(np.asarray(out["fake_image"])).max() <= 1.0


def _save(obj, path):
  torch.save(obj, path)
  return str(path)


def test_converter_reads_every_layout(state_dict, tmp_path):
  from safetensors.numpy import save_file

  tensors_ = {k: torch.from_numpy(v) for k, v in state_dict.items()}
  other = {k: torch.zeros_like(v) for k, v in tensors_.items()}
  layouts = {
    # PIRender's training checkpoint: net_G (DDP names) beside the EMA.
    "pirender": {
      "net_G": {f"module.{k}": v for k, v in other.items()},
      "net_G_ema": tensors_,
      "current_epoch": 3,
      "current_iteration": 1200,
    },
    "styletalk": {"net_G_ema": tensors_},
    "bare": tensors_,
  }
  for name, obj in layouts.items():
    path = _save(obj, tmp_path / f"{name}.pt")
    sd = tensors.state_dict(
      tensors.read_checkpoint(path), path, keys=("net_G_ema",)
    )
    assert sorted(sd) == sorted(state_dict), name
    for k, v in sd.items():
      np.testing.assert_array_equal(v, state_dict[k])
  # The whole way (file -> folder -> Renderer) for safetensors here, for a
  # .pt in the CLI test.
  path = str(tmp_path / "bare.safetensors")
  save_file(state_dict, path)
  summary = convert_lib.convert(path, str(tmp_path / "out"), log=print)
  assert summary["values"] == 22_519_109
  loaded = pirender.Renderer.load(str(tmp_path / "out"))
  reference, _ = convert_lib.convert_state_dict(state_dict, "x")
  for a, b in zip(
    jax.tree.leaves(loaded.params), jax.tree.leaves(reference), strict=True
  ):
    np.testing.assert_array_equal(np.asarray(a), b)
  assert loaded.spec.source["checkpoint"]["sha256"]


def test_converter_cli_and_refusals(state_dict, tmp_path):
  good = _save({"net_G_ema": state_dict_t(state_dict)}, tmp_path / "g.pt")
  out = tmp_path / "renderer"
  proc = conftest.python(
    ["-m", "saas_jax.convert", "pirender", "--checkpoint", good, "--out", out]
  )
  assert proc.returncode == 0, proc.stderr
  assert "22,519,109 values read" in proc.stdout
  meta = json.loads((out / "renderer.json").read_text())
  assert meta["kind"] == "pirender" and meta["source"]["tensors"] == 304
  # A finished conversion is never overwritten.
  before = (out / "params.npz").stat().st_mtime_ns
  with pytest.raises(tensors.ConvertError, match="already exists"):
    convert_lib.convert(good, str(out))
  assert (out / "params.npz").stat().st_mtime_ns == before

  def refuse(sd, *words):
    with pytest.raises(tensors.ConvertError) as e:
      convert_lib.convert_state_dict(sd, "bad.pt")
    for w in words:
      assert w in str(e.value), str(e.value)

  extra = dict(state_dict, **{"editing_net.extra.weight": np.zeros(3)})
  refuse(extra, "1 tensors fit nowhere", "editing_net.extra.weight")
  missing = dict(state_dict)
  del missing["warpping_net.flow_out.2.bias"]
  refuse(missing, "missing tensor 'warpping_net.flow_out.2.bias'")
  wrong = dict(state_dict)
  wrong["mapping_net.first.0.weight"] = np.zeros((256, 70, 7), np.float32)
  refuse(wrong, "mapping_net.first.0.weight", "[256, 70, 7]", "[256, 73, 7]")

  # No code from the file runs: a pickled object is refused by torch's
  # weights-only loader, and nothing is written.
  evil = _save({"net_G_ema": Evil()}, tmp_path / "evil.pt")
  with pytest.raises(tensors.ConvertError, match="loads safely") as e:
    convert_lib.convert(evil, str(tmp_path / "evil_out"))
  assert "weights_only" not in str(e.value)  # torch's advice to load unsafely
  assert not (tmp_path / "evil_out").exists()
  assert not [p for p in os.listdir(tmp_path) if ".tmp-" in p]
  # A folder for the file, a file for the folder.
  with pytest.raises(tensors.ConvertError, match="is a folder"):
    convert_lib.convert(str(tmp_path), str(tmp_path / "o"))
  with pytest.raises(tensors.ConvertError, match="is a file; --out"):
    convert_lib.convert(good, evil)


class Evil:
  def __reduce__(self):
    return (os.system, ("echo pwned",))


def state_dict_t(sd):
  return {k: torch.from_numpy(v) for k, v in sd.items()}


def test_windows_are_edge_padded():
  coeffs = np.arange(5, dtype=np.float32)[:, None].repeat(73, 1)
  w = pirender.driving_windows(coeffs)
  assert w.shape == (5, 27, 73)
  np.testing.assert_array_equal(w[0, :14, 0], 0)  # clamped at the start
  np.testing.assert_array_equal(w[0, 13:18, 0], [0, 1, 2, 3, 4])
  np.testing.assert_array_equal(w[4, 13:, 0], 4)  # and at the end


def test_render_batches_equal_forward(small_renderer):
  rng = np.random.default_rng(0)
  portrait = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
  coeffs = rng.normal(size=(5, 73)).astype(np.float32)
  frames = small_renderer.render(portrait, coeffs)  # batches 2, 2, 1 (+pad)
  assert frames.shape == (5, 256, 256, 3) and frames.dtype == np.uint8
  image = np.repeat(pirender.to_unit(portrait)[None], 5, 0)
  want = small_renderer.forward(image, pirender.driving_windows(coeffs))
  want = pirender.to_uint8(want["fake_image"])
  assert np.abs(frames.astype(int) - want.astype(int)).max() <= 1
  with pytest.raises(DataError, match="256x256 RGB uint8 portrait"):
    small_renderer.render(portrait[:128], coeffs)
  with pytest.raises(DataError, match="non-finite"):
    small_renderer.render(portrait, np.full((3, 73), np.nan, np.float32))


def test_renderer_load_names_a_missing_folder(tmp_path):
  with pytest.raises(DataError, match=r"python -m saas_jax\.convert pirender"):
    pirender.Renderer.load(str(tmp_path))


def test_read_portrait(tmp_path):
  import mediapy

  rng = np.random.default_rng(0)
  big = rng.integers(0, 256, (512, 512, 4), dtype=np.uint8)
  mediapy.write_image(tmp_path / "big.png", big)
  with pytest.warns(UserWarning, match="resized"):
    image = pirender.read_portrait(str(tmp_path / "big.png"))
  assert image.shape == (256, 256, 3) and image.dtype == np.uint8
  mediapy.write_image(tmp_path / "wide.png", big[:256])
  with pytest.raises(DataError, match="square"):
    pirender.read_portrait(str(tmp_path / "wide.png"))


def test_generate_cli_photoreal(smoke_runs, small_renderer, tmp_path):
  small_renderer.save(str(tmp_path / "renderer"))
  rng = np.random.default_rng(0)
  seconds = 1.6
  wav = tmp_path / "speech.wav"
  t = np.arange(int(seconds * 16000)) / 16000
  soundfile.write(wav, 0.3 * np.sin(2 * np.pi * 180 * t), 16000)
  for name, frames in (("style", 50), ("source", 10)):
    clip = np.zeros((frames, 73), np.float32)
    clip[:, :64] = 0.3 * rng.normal(size=(frames, 64))
    clip[:, 70:] = (1.0, 128.0, 128.0)
    np.save(tmp_path / f"{name}.npy", clip)
  portrait = tmp_path / "face.png"
  import mediapy

  mediapy.write_image(portrait, rng.integers(0, 256, (256, 256, 3), np.uint8))
  common = ["-m", "saas_jax.generate", "--runs", smoke_runs]
  common += ["--audio", str(wav), "--style", str(tmp_path / "style.npy")]
  common += ["--source", str(tmp_path / "source.npy"), "--no_mat"]
  common += ["--renderer", f"pirender:{tmp_path / 'renderer'}"]
  # The portrait is required, and checked before any run loads.
  proc = conftest.python([*common, "--out", str(tmp_path / "no")])
  assert proc.returncode == 2 and "--image" in proc.stderr
  out = tmp_path / "out"
  proc = conftest.python(
    [*common, "--image", str(portrait), "--with_preview", "--out", str(out)]
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  info = video.probe(str(out / "speech_0.mp4"))
  assert info["frames"] == round(seconds * 25) and info["fps"] == 25
  assert abs(info["audio_duration"] - seconds) < 0.1
  frames = video_frames(out / "speech_0.mp4")
  assert frames.shape[1:] == (256, 256, 3)  # PIRender's frame, not the preview
  assert video.probe(str(out / "speech_0_preview.mp4"))["frames"] == 40
  prov = json.loads((out / "speech.json").read_text())
  assert prov["renderer"]["pirender"] == str(tmp_path / "renderer")
  assert prov["inputs"]["image"]["sha256"]


def video_frames(path):
  import mediapy

  video.use_bundled_ffmpeg()
  return np.asarray(mediapy.read_video(str(path)))


@pytest.mark.skipif(
  not os.environ.get("SAAS_JAX_PIRENDER"),
  reason="SAAS_JAX_PIRENDER (a PIRender/StyleTalk renderer checkpoint) unset",
)
def test_golden_styletalk_demo(shared_data, tmp_path):
  """StyleTalk's released demo: its renderer on demo.npy and
  andrew_clip_1.png made demo.mp4 (h264, so compared by PSNR)."""
  import mediapy

  convert_lib.convert(os.environ["SAAS_JAX_PIRENDER"], str(tmp_path / "r"))
  renderer = pirender.Renderer.load(str(tmp_path / "r"))
  st = shared_data / "styletalk"
  coeffs = np.load(st / "demo.npy").astype(np.float32)
  portrait = pirender.read_portrait(
    str(st / "source_video/image/andrew_clip_1.png")
  )
  picks = np.linspace(0, len(coeffs) - 1, 24).astype(int)
  windows = pirender.driving_windows(coeffs)[picks]
  image = np.repeat(pirender.to_unit(portrait)[None], len(picks), 0)
  ours = [
    pirender.to_uint8(
      renderer.forward(image[i : i + 4], windows[i : i + 4])["fake_image"]
    )
    for i in range(0, len(picks), 4)
  ]
  ours = np.concatenate(ours).astype(np.float64)
  video.use_bundled_ffmpeg()
  ref = np.asarray(mediapy.read_video(str(st / "demo.mp4")))[picks]
  mse = np.mean((ours - ref.astype(np.float64)) ** 2)
  psnr = 10 * np.log10(255.0**2 / mse)
  print(f"PSNR against demo.mp4 on {len(picks)} frames: {psnr:.2f} dB")
  assert psnr >= 30.0
