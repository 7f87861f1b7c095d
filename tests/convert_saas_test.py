"""Official SAAS video-driven and SadTalker audio2exp checkpoints -> our runs.

Small PyTorch reference models with the official state-dict names and the
official forward (eval mode), random weights and BatchNorm statistics; their
checkpoints are converted and our Stylizer must reproduce their outputs.
"""

import json
import os

import flax.traverse_util
import jax
import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from saas_jax.convert import saas  # noqa: E402
from saas_jax.convert.tensors import ConvertError  # noqa: E402
from saas_jax.inference import Pipeline, Stylizer, load_run  # noqa: E402
from saas_jax.models import builders  # noqa: E402

DIM, HEADS, MLP, LAYERS, CODES = 256, 8, 384, 12, 500  # the official E_s
HIDDEN, STYLE_LAYERS = 64, 6
TOL = 1e-4


# ------------------------------------------------- reference: style E_s ---


class Holder(nn.Module):
  """A named container (the official modules nest their layers so)."""

  def __init__(self, **children):
    super().__init__()
    for name, child in children.items():
      if isinstance(child, nn.Parameter):
        self.register_parameter(name, child)
      else:
        self.add_module(name, child)


class SelfAttention(nn.Module):
  """qkv without bias, rows (q|k|v, head, d); scale 1/sqrt(hidden)."""

  def __init__(self):
    super().__init__()
    self.to_qkv = nn.Linear(DIM, 3 * DIM, bias=False)
    self.to_out = nn.Linear(DIM, DIM)

  def forward(self, x):  # [B, N, D]
    b, n, _ = x.shape
    qkv = self.to_qkv(x).reshape(b, n, 3, HEADS, DIM // HEADS)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, H, N, d] each
    attn = torch.softmax(q @ k.transpose(-1, -2) * DIM**-0.5, -1)
    return self.to_out((attn @ v).transpose(1, 2).reshape(b, n, DIM))


class FeedForward(nn.Module):
  def __init__(self):
    super().__init__()
    self.l1 = nn.Linear(DIM, MLP)
    self.l2 = nn.Linear(MLP, DIM)

  def forward(self, x):  # the official GELU is the tanh approximation
    return self.l2(nn.functional.gelu(self.l1(x), approximate="tanh"))


class PreNormResidual(nn.Module):
  """Residual(Norm(fn)): .fn.norm, .fn.fn."""

  def __init__(self, fn):
    super().__init__()
    self.fn = Holder(norm=nn.LayerNorm(DIM, eps=1e-5), fn=fn)

  def forward(self, x):
    return x + self.fn.fn(self.fn.norm(x))


def conv_block(c_in, pool):
  layers = [
    nn.Conv1d(c_in, DIM, 5, 1 if pool else 2, 2, padding_mode="replicate"),
    nn.LeakyReLU(0.2),
    nn.BatchNorm1d(DIM),
  ]
  return nn.Sequential(*layers, *([nn.MaxPool1d(2)] if pool else []))


class StyleEncoder(nn.Module):
  """VQModelTransformer_encoder: E_s, channel-major quantizer, pooling."""

  def __init__(self):
    super().__init__()
    self.encoder = Holder(
      squasher=nn.Sequential(
        conv_block(64, False), conv_block(DIM, True), conv_block(DIM, True)
      ),
      encoder_transformer=Holder(
        net=nn.Sequential(
          *[
            PreNormResidual(f())
            for _ in range(LAYERS)
            for f in (SelfAttention, FeedForward)
          ]
        )
      ),
      encoder_pos_embedding=Holder(
        pos_embedding=nn.Parameter(torch.zeros(4, DIM))
      ),
      encoder_linear_embedding=Holder(net=nn.Linear(DIM, DIM)),
    )
    self.quantize = Holder(embedding=nn.Embedding(CODES, DIM))
    self.self_attention = Holder(Ws=nn.Parameter(torch.zeros(1, DIM)))

  def tokens(self, x):  # [B, 32, 64] -> [B, 4, D]
    e = self.encoder
    h = e.squasher(x.transpose(1, 2)).transpose(1, 2)
    h = (
      e.encoder_linear_embedding.net(h) + e.encoder_pos_embedding.pos_embedding
    )
    return e.encoder_transformer.net(h)

  def forward(self, x):  # -> style code [B, D], continuous tokens, indices
    h = self.tokens(x)
    b, n, d = h.shape
    z = h.permute(0, 2, 1).reshape(-1, d)  # rows of D: 64 channels x 4 steps
    codes = self.quantize.embedding.weight
    dist = (z**2).sum(1, keepdim=True) + (codes**2).sum(1) - 2 * z @ codes.T
    idx = dist.argmin(1)
    zq = z + (codes[idx] - z)
    zq = zq.reshape(b, d, n).permute(0, 2, 1)
    w = torch.softmax(zq @ self.self_attention.Ws.T, dim=1)  # [B, N, 1]
    return (w * zq).sum(1), h, idx


# ------------------------------------------ reference: E_v, RA, decoder ---


class DoubleConv(nn.Module):
  def __init__(self, c_in, c_out):
    super().__init__()
    self.double_conv = nn.Sequential(
      nn.Conv1d(c_in, c_out, 3, padding=1, bias=False),
      nn.BatchNorm1d(c_out),
      nn.ReLU(),
      nn.Conv1d(c_out, c_out, 3, padding=1, bias=False),
      nn.BatchNorm1d(c_out),
      nn.ReLU(),
    )

  def forward(self, x):
    return self.double_conv(x)


class HyperNetwork(nn.Module):
  """s [B, 256] -> [B, 256, 64], the shape of a 4-gate LSTM weight."""

  def __init__(self):
    super().__init__()
    self.inc = DoubleConv(1, 64)
    self.down1 = Holder(
      maxpool_conv=nn.Sequential(nn.MaxPool1d(2), DoubleConv(64, 128))
    )
    self.down2 = Holder(
      maxpool_conv=nn.Sequential(nn.MaxPool1d(2), DoubleConv(128, 256))
    )

  def forward(self, s):
    x = self.inc(s[:, None])
    return self.down2.maxpool_conv(self.down1.maxpool_conv(x))


class ResidualAdapter(nn.Module):
  def __init__(self):
    super().__init__()
    h = HIDDEN
    self.neutral_branch = nn.LSTM(h, h, 4, batch_first=True)
    self.neutral_init_hidden_state = nn.Parameter(torch.zeros(4, h))
    self.neutral_init_cell_state = nn.Parameter(torch.zeros(4, h))
    self.ra_style = nn.LSTM(h + DIM, h, STYLE_LAYERS, batch_first=True)
    self.ra_style_tmp = nn.LSTM(h + DIM, h, STYLE_LAYERS, batch_first=True)
    self.ra_init_hidden_state = nn.Linear(DIM, STYLE_LAYERS * h)
    self.ra_init_cell_state = nn.Linear(DIM, STYLE_LAYERS * h)
    self.linear_layers_ih = nn.ModuleList(HyperNetwork() for _ in range(4))
    self.linear_layers_hh = nn.ModuleList(HyperNetwork() for _ in range(4))
    self.linear_layers_bias_ih = nn.ModuleList(
      nn.Linear(DIM, DIM) for _ in range(4)
    )
    self.linear_layers_bias_hh = nn.ModuleList(
      nn.Linear(DIM, DIM) for _ in range(4)
    )

  def forward(self, z, s):  # [B, T, 64], [B, 256] -> [B, T, 64]
    b, t, _ = z.shape
    h0 = self.neutral_init_hidden_state[:, None].expand(-1, b, -1)
    c0 = self.neutral_init_cell_state[:, None].expand(-1, b, -1)
    neutral, _ = self.neutral_branch(z, (h0.contiguous(), c0.contiguous()))
    hs = (
      self.ra_init_hidden_state(s).reshape(b, STYLE_LAYERS, -1).transpose(0, 1)
    )
    cs = self.ra_init_cell_state(s).reshape(b, STYLE_LAYERS, -1).transpose(0, 1)
    offsets = [
      (
        self.linear_layers_ih[k](s),
        self.linear_layers_hh[k](s),
        self.linear_layers_bias_ih[k](s),
        self.linear_layers_bias_hh[k](s),
      )
      for k in range(4)
    ]
    x = torch.cat([z, s[:, None].expand(-1, t, -1)], -1)
    out = []
    for i in range(b):
      # As released: layers 1-4 of ra_style, times (1 + H(s)), are written
      # into ra_style_tmp, which then runs with its own layers 0 and 5.
      for k in range(4):
        for name, o in zip(
          ("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
          offsets[k],
          strict=True,
        ):
          base = getattr(self.ra_style, f"{name}_l{k + 1}").data
          getattr(self.ra_style_tmp, f"{name}_l{k + 1}").data = base * (
            1 + o[i]
          )
      state = (hs[:, i : i + 1].contiguous(), cs[:, i : i + 1].contiguous())
      out.append(self.ra_style_tmp(x[i : i + 1], state)[0])
    return neutral + torch.cat(out)


class Decoder(nn.Module):
  def __init__(self):
    super().__init__()
    self.features = nn.Sequential(
      nn.Linear(HIDDEN + DIM, 480),
      nn.ReLU(),
      nn.Linear(480, 720),
      nn.ReLU(),
      nn.Linear(720, 1080),
      nn.ReLU(),
    )
    self.last_layer_expression = nn.Linear(1080, 46)
    self.last_layer_mouth = nn.Linear(1080, 18)

  def forward(self, y, s):
    h = self.features(torch.cat([y, s[:, None].expand(-1, y.shape[1], -1)], -1))
    return torch.cat(
      [self.last_layer_mouth(h), self.last_layer_expression(h)], -1
    )


def video_encoder():
  return Holder(
    layers=nn.Sequential(
      nn.Linear(64 + DIM, 160),
      nn.ReLU(),
      nn.Linear(160, 80),
      nn.ReLU(),
      nn.Linear(80, 64),
    )
  )


# ------------------------------------------- reference: SadTalker netG ---

WAV2LIP = (  # c_in, c_out, kernel, stride, padding, residual
  (1, 32, 3, 1, 1, False),
  (32, 32, 3, 1, 1, True),
  (32, 32, 3, 1, 1, True),
  (32, 64, 3, (3, 1), 1, False),
  (64, 64, 3, 1, 1, True),
  (64, 64, 3, 1, 1, True),
  (64, 128, 3, 3, 1, False),
  (128, 128, 3, 1, 1, True),
  (128, 128, 3, 1, 1, True),
  (128, 256, 3, (3, 2), 1, False),
  (256, 256, 3, 1, 1, True),
  (256, 512, 3, 1, 0, False),
  (512, 512, 1, 1, 0, False),
)


class ConvBN(nn.Module):
  def __init__(self, c_in, c_out, k, stride, pad, residual):
    super().__init__()
    self.conv_block = nn.Sequential(
      nn.Conv2d(c_in, c_out, k, stride, pad), nn.BatchNorm2d(c_out)
    )
    self.residual = residual

  def forward(self, x):
    out = self.conv_block(x)
    return torch.relu(out + x if self.residual else out)


class SimpleWrapperV2(nn.Module):
  def __init__(self):
    super().__init__()
    self.audio_encoder = nn.Sequential(*(ConvBN(*b) for b in WAV2LIP))
    self.mapping1 = nn.Linear(512 + 64 + 1, 64)

  def forward(self, mel, ref, ratio):  # [N, 1, 80, 16], [N, 64], [N, 1]
    x = self.audio_encoder(mel).flatten(1)
    return self.mapping1(torch.cat([x, ref, ratio], 1))


# ---------------------------------------------------------- fixtures ---


def randomize(module: nn.Module, gen: torch.Generator) -> None:
  """Non-trivial values where PyTorch's init is constant or tiny."""

  def normal(t, std):
    t.copy_(torch.randn(t.shape, generator=gen) * std)

  def uniform(t, lo, hi):
    t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=gen))

  with torch.no_grad():
    for m in module.modules():
      if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
        uniform(m.weight, 0.5, 1.5)
        normal(m.bias, 0.1)
        normal(m.running_mean, 0.1)
        uniform(m.running_var, 0.5, 1.5)
        m.num_batches_tracked.fill_(1234)
      elif isinstance(m, nn.LayerNorm):
        uniform(m.weight, 0.5, 1.5)
        normal(m.bias, 0.1)
    for name, p in module.named_parameters():
      if name.endswith(
        ("pos_embedding", "Ws", "init_hidden_state", "init_cell_state")
      ):
        normal(p, 0.3)
      elif name.endswith("embedding.weight"):  # the codebook
        normal(p, 1.0)
      elif name.endswith("mapping1.bias"):  # SadTalker inits it to 0
        normal(p, 0.1)


@pytest.fixture(scope="module")
def refs():
  # One thread: beside JAX's threads on 2 busy cores, torch's own pool makes
  # these small models ~100x slower.
  threads = torch.get_num_threads()
  torch.set_num_threads(1)
  torch.manual_seed(0)
  gen = torch.Generator().manual_seed(1)
  models = {
    "encoder": video_encoder(),
    "style_encoder": StyleEncoder(),
    "ra": ResidualAdapter(),
    "decoder": Decoder(),
    "audio2exp": SimpleWrapperV2(),
  }
  for m in models.values():
    randomize(m, gen)
    m.eval()
  yield models
  torch.set_num_threads(threads)


def video_state(refs, prefix=""):
  return {
    s: {prefix + k: v.clone() for k, v in refs[s].state_dict().items()}
    for s in saas.VIDEO_SECTIONS
  }


@pytest.fixture(scope="module")
def files(refs, tmp_path_factory):
  d = tmp_path_factory.mktemp("checkpoints")
  paths = {"video": str(d / "video_driven.pth"), "audio": str(d / "a2e.pth")}
  # As video_driven/train.py saves it: the four model sections beside
  # training-only entries (critics, optimizer, epoch...).
  critic = nn.Conv1d(64, 8, 4)
  torch.save(
    {
      "config": "configs/video_driven/video_driven.json",
      **video_state(refs),
      "tem_discriminator": critic.state_dict(),
      # An Adam state dict's shape (built by hand: torch's optimizers
      # import its compiler stack, see conftest).
      "optimizer": {
        "all_optimizer": {
          "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2)}},
          "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "params": [0]}],
        }
      },
      "epoch": 10,
      "currBestLoss": 0.5,
    },
    paths["video"],
  )
  netg = refs["audio2exp"].state_dict()
  torch.save({"model": netg, "epoch": 300}, paths["audio"])
  return paths


@pytest.fixture(scope="module")
def video_run(files, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("runs") / "video")
  summary = saas.convert_saas_video_driven(files["video"], out)
  assert summary["out"] == out
  return out, summary


@pytest.fixture(scope="module")
def audio_run(files, video_run, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("runs") / "audio")
  summary = saas.convert_sadtalker_audio2exp(files["audio"], video_run[0], out)
  return out, summary


def official_style(refs, exp):  # [32, 64] -> (code [256], tokens, indices)
  with torch.no_grad():
    code, tokens, idx = refs["style_encoder"](torch.from_numpy(exp)[None])
  return code[0].numpy(), tokens[0].numpy(), idx.numpy()


def official_video(refs, src, style):
  """video_driven/inference.py: s_src from the source's first 32 frames."""
  x = torch.from_numpy(src)[None]
  with torch.no_grad():
    s_src = refs["style_encoder"](x[:, :32])[0]
    s_t = refs["style_encoder"](torch.from_numpy(style)[None])[0]
    z = refs["encoder"].layers(
      torch.cat([x, s_src[:, None].expand(-1, len(src), -1)], -1)
    )
    return refs["decoder"](refs["ra"](z, s_t), s_t)[0].numpy()


def official_audio(refs, mel, blink, ref_exp, style):
  """E_a = SadTalker's netG, then E_v's MLP over [audio exp ++ s_src];
  s_src from the source frame repeated over a window."""
  t = len(mel)
  with torch.no_grad():
    src = torch.from_numpy(np.repeat(ref_exp[None], 32, 0))[None]
    s_src = refs["style_encoder"](src)[0]
    s_t = refs["style_encoder"](torch.from_numpy(style)[None])[0]
    audio = refs["audio2exp"](
      torch.from_numpy(mel)[:, None],
      torch.from_numpy(ref_exp)[None].expand(t, -1),
      torch.from_numpy(blink)[:, None],
    )[None]  # [1, T, 64]
    z = refs["encoder"].layers(
      torch.cat([audio, s_src[:, None].expand(-1, t, -1)], -1)
    )
    return refs["decoder"](refs["ra"](z, s_t), s_t)[0].numpy()


def exp_clip(seed, frames):
  return (
    np.random.default_rng(seed).normal(size=(frames, 64)).astype(np.float32)
  )


# -------------------------------------------------------------- parity ---


@pytest.fixture(scope="module")
def video_stylizer(video_run):
  """Through Pipeline.load, which reads runs as generate does."""
  pipe = Pipeline.load(
    expression_run=video_run[0], driver="video", with_pose=False
  )
  assert pipe.driver == "video"
  return pipe.stylizer


def test_video_driven_parity(refs, video_run, video_stylizer):
  summary = video_run[1]
  n_tensors = sum(len(refs[s].state_dict()) for s in saas.VIDEO_SECTIONS)
  assert summary["tensors"] == n_tensors
  # 4 x 6 LSTM tensors of ra_style / ra_style_tmp, 51 num_batches_tracked.
  assert len(summary["ignored"]) == 24 + 51
  assert summary["not_converted"] == [
    "config",
    "currBestLoss",
    "epoch",
    "optimizer",
    "tem_discriminator",
  ]
  style, src = exp_clip(1, 32), exp_clip(2, 48)

  s_t = video_stylizer.style_code(style)
  want_t, _, _ = official_style(refs, style)
  s_src = video_stylizer.style_code(src[:32])
  want_src, _, _ = official_style(refs, src[:32])
  errors = {"style": np.max(np.abs(s_t - want_t))}
  errors["source style"] = np.max(np.abs(s_src - want_src))

  exp = video_stylizer(source_exp=src, style_code=s_t, source_code=s_src)
  assert exp.shape == (48, 64) and np.isfinite(exp).all()
  want = official_video(refs, src, style)
  errors["expression"] = np.max(np.abs(exp - want))
  print("video-driven max |ours - official|:", errors)
  assert max(errors.values()) <= TOL


def test_style_encoder_tokens(refs, video_stylizer):
  """The converted run uses the official numerics (tanh GELU, LayerNorm
  eps 1e-5; official_numerics): E_s's tokens before quantization agree,
  not just the codes picked (with the exact GELU and eps 1e-6 they
  differed by 8e-4)."""
  style_cfg = video_stylizer.run.spec["style_model"]
  model = builders.style_encoder(style_cfg)
  variables = video_stylizer.style_variables
  x = np.stack([exp_clip(s, 32) for s in range(3, 11)])  # [8, 32, 64]

  def encode(m, x):
    z = m.vq.encode(x)
    return z, m.vq.quantize(z)[1]["indices"]

  ours, idx = jax.jit(lambda v, x: model.apply(v, x, method=encode))(
    variables, x
  )
  with torch.no_grad():
    _, theirs, their_idx = refs["style_encoder"](torch.from_numpy(x))
  diff = np.max(np.abs(np.asarray(ours) - theirs.numpy()))
  print(f"E_s tokens before quantization: max |ours - official| {diff:.1e}")
  assert diff <= 1e-4
  np.testing.assert_array_equal(np.asarray(idx).reshape(-1), their_idx)


def mel_windows(seed, frames):  # Wav2Lip mels are normalised to [-4, 4]
  rng = np.random.default_rng(seed)
  return rng.uniform(-4, 4, (frames, 80, 16)).astype(np.float32)


def test_audio_driven_parity(refs, audio_run):
  out, summary = audio_run
  assert summary["tensors"] == len(refs["audio2exp"].state_dict())
  stylizer = Stylizer.load(out, driver="audio")
  mel, style, source = mel_windows(4, 40), exp_clip(5, 32), exp_clip(6, 1)
  blink = np.random.default_rng(7).uniform(0, 1, 40).astype(np.float32)
  exp = stylizer(source_exp=source, mel=mel, blink=blink, style_exp=style)
  assert exp.shape == (40, 64) and np.isfinite(exp).all()
  want = official_audio(refs, mel, blink, source[0], style)
  error = np.max(np.abs(exp - want))
  print(f"audio-driven max |ours - official|: {error:.1e}")
  assert error <= TOL


def assert_same(a: saas.Converted, b: saas.Converted) -> None:
  for name in ("generator", "style"):
    fa = flax.traverse_util.flatten_dict(getattr(a, name), sep="/")
    fb = flax.traverse_util.flatten_dict(getattr(b, name), sep="/")
    assert fa.keys() == fb.keys()
    for k in fa:
      np.testing.assert_array_equal(fa[k], fb[k], err_msg=k)


def test_video_layouts(refs, files, tmp_path):
  """DistributedDataParallel's "module." prefixes are dropped; a flat
  state dict with section prefixes (.safetensors) reads the same."""
  from safetensors.numpy import save_file

  want = saas.read_saas_video_driven(files["video"])
  path = str(tmp_path / "ddp.pth")
  torch.save(video_state(refs, "module."), path)
  assert_same(saas.read_saas_video_driven(path), want)

  flat = {
    f"{s}.module.{k}": v.numpy()
    for s, sd in video_state(refs).items()
    for k, v in sd.items()
  }
  path = str(tmp_path / "video_driven.safetensors")
  save_file(flat, path)
  assert_same(saas.read_saas_video_driven(path), want)


def test_sadtalker_layouts(refs, files, video_run, tmp_path):
  """The V0.0.2 safetensors bundle (only its "audio2exp." tensors are read),
  and a state dict saved from the Audio2Exp wrapper ("netG." names)."""
  from safetensors.numpy import save_file

  sd = refs["audio2exp"].state_dict()
  tensors = {f"audio2exp.{k}": v.numpy() for k, v in sd.items()}
  rng = np.random.default_rng(0)
  for other in (
    "audio2pose.audio_encoder.audio_encoder.0.conv_block.0.weight",
    "generator.first.conv.weight",
    "face_3drecon.fc.weight",
  ):
    tensors[other] = rng.normal(size=(4, 3)).astype(np.float32)
  bundle = str(tmp_path / "SadTalker_V0.0.2_256.safetensors")
  save_file(tensors, bundle)
  wrapper = str(tmp_path / "wrapper.pth")
  torch.save({"model": {f"netG.{k}": v for k, v in sd.items()}}, wrapper)

  video = load_run(video_run[0], "video_driven")
  want = saas.read_sadtalker_audio2exp(files["audio"], video)
  for path in (bundle, wrapper):
    got = saas.read_sadtalker_audio2exp(path, video)
    assert got.tensors == len(sd)
    assert_same(got, want)


def test_run_files(video_run, audio_run):
  """spec.json and config.json as a trained run writes them; both runs
  share the style encoder."""
  specs = {}
  for name, (run, _) in (("video", video_run), ("audio", audio_run)):
    with open(os.path.join(run, "spec.json")) as f:
      specs[name] = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
      config = json.load(f)
    assert config["trainer"] == specs[name]["trainer"] == "motion"
    assert config["driver"] == specs[name]["driver"] == name
    assert specs[name]["model"] == config["model"]
    assert specs[name]["model"]["decoder_dims"] == [480, 720, 1080]
    assert specs[name]["style_model"]["grouping"] == "channel_major"
    assert specs[name]["style_model"]["attn_scale"] == "hidden"
    assert specs[name]["style_model"]["velocity_scale"] == 0
  assert specs["video"]["style_encoder"] == specs["audio"]["style_encoder"]


# ------------------------------------------------------------ failures ---


def convert_modified(refs, tmp_path, change):
  state = video_state(refs)
  change(state)
  path = str(tmp_path / "bad.pth")
  torch.save(state, path)
  out = str(tmp_path / "run")
  try:
    saas.convert_saas_video_driven(path, out)
  finally:
    assert not os.path.exists(out)  # nothing half-written


def test_extra_tensor(refs, tmp_path):
  def add(state):
    state["ra"]["surprise.weight"] = torch.zeros(3)

  with pytest.raises(ConvertError, match=r"ra\.surprise\.weight"):
    convert_modified(refs, tmp_path, add)


def test_wrong_shape(refs, tmp_path):
  def shrink(state):
    state["decoder"]["last_layer_mouth.weight"] = torch.zeros(17, 1080)

  with pytest.raises(
    ConvertError,
    match=r"decoder\.last_layer_mouth\.weight.*\[17, 1080\].*\[18, 1080\]",
  ):
    convert_modified(refs, tmp_path, shrink)


def test_missing_tensor_and_section(refs, tmp_path):
  def drop(state):
    del state["style_encoder"]["quantize.embedding.weight"]

  with pytest.raises(ConvertError, match=r"quantize\.embedding\.weight"):
    convert_modified(refs, tmp_path, drop)

  with pytest.raises(ConvertError, match="lacks ra"):
    convert_modified(refs, tmp_path, lambda state: state.pop("ra"))


def test_sadtalker_extra_tensor(refs, video_run, tmp_path):
  sd = dict(refs["audio2exp"].state_dict())
  sd["mapping2.weight"] = torch.zeros(64, 30)
  path = str(tmp_path / "a2e.pth")
  torch.save({"model": sd}, path)
  with pytest.raises(ConvertError, match=r"mapping2\.weight"):
    saas.convert_sadtalker_audio2exp(path, video_run[0], str(tmp_path / "o"))


def test_refuses_existing_output(files, video_run):
  with pytest.raises(ConvertError, match="not empty"):
    saas.convert_saas_video_driven(files["video"], video_run[0])


def test_audio_needs_a_video_run(files, audio_run, tmp_path):
  with pytest.raises(ValueError, match="audio-driven run"):
    saas.convert_sadtalker_audio2exp(
      files["audio"], audio_run[0], str(tmp_path / "o")
    )


def test_converted_runs_generate_end_to_end(files, audio_run, tmp_path):
  """The CLI converts the official checkpoint, and both converted runs
  drive `python -m saas_jax.generate` to an mp4 (no pose run: the style
  clip's pose). In this process: the CLIs' own entry points."""
  import soundfile

  from saas_jax import generate
  from saas_jax.convert import __main__ as convert_cli
  from saas_jax.render import video

  run = tmp_path / "video_driven"
  argv = ["saas_video_driven", "--checkpoint", files["video"]]
  assert convert_cli.main([*argv, "--out", str(run)]) == 0
  seconds = 1.2
  wav = tmp_path / "speech.wav"
  t = np.arange(int(seconds * 16000)) / 16000
  soundfile.write(wav, 0.3 * np.sin(2 * np.pi * 160 * t), 16000)
  for name, frames in (("style", 40), ("source", 30)):
    clip = np.zeros((frames, 73), np.float32)
    clip[:, :64] = exp_clip(len(name), frames)
    clip[:, 70:] = (1.0, 128.0, 128.0)
    np.save(tmp_path / f"{name}.npy", clip)
  common = ["--style", str(tmp_path / "style.npy")]
  common += ["--audio", str(wav), "--pose", "style", "--no_mat"]
  source = str(tmp_path / "source.npy")
  jobs = {
    "video": ["--driver", "video", "--expression_run", str(run)],
    "audio": ["--expression_run", audio_run[0]],
  }
  jobs["video"] += ["--source_video", source]
  jobs["audio"] += ["--source", source]
  for driver, args in jobs.items():
    out = tmp_path / f"out_{driver}"
    assert generate.main([*common, *args, "--out", str(out)]) == 0, driver
    npy = np.load(out / "speech_0.npy")
    assert npy.shape == (round(seconds * 25), 73) and np.isfinite(npy).all()
    info = video.probe(str(out / "speech_0.mp4"))
    assert info["frames"] == len(npy) and info["audio_duration"] is not None
