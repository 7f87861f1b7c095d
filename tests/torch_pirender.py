"""A PyTorch FaceGenerator written from PIRender's architecture facts
(../shared/reference/rendering_and_data.md), with the official state-dict
names, as the parity reference of tests/pirender_test.py and
benchmarks/render.py. Importing it needs torch (the `[torch]` extra).
"""

import torch
import torch.nn.functional as F
from torch import nn


def _act(x):
  return F.leaky_relu(x, 0.1)


class LayerNorm2d(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(c, 1, 1))
    self.bias = nn.Parameter(torch.zeros(c, 1, 1))

  def forward(self, x):
    shape = x.shape[1:]
    return F.layer_norm(
      x, shape, self.weight.expand(shape), self.bias.expand(shape)
    )


class Adain(nn.Module):
  def __init__(self, c, descriptor=256, hidden=128):
    super().__init__()
    self.norm = nn.InstanceNorm2d(c, affine=False)
    self.mlp_shared = nn.Sequential(nn.Linear(descriptor, hidden), nn.ReLU())
    self.mlp_gamma = nn.Linear(hidden, c)
    self.mlp_beta = nn.Linear(hidden, c)

  def forward(self, x, z):
    h = self.mlp_shared(z.view(z.size(0), -1))
    g = self.mlp_gamma(h)[..., None, None]
    b = self.mlp_beta(h)[..., None, None]
    return self.norm(x) * (1 + g) + b


class MappingNet(nn.Module):
  def __init__(self, coeff=73, d=256, layers=3):
    super().__init__()
    self.layers = layers
    self.first = nn.Sequential(nn.Conv1d(coeff, d, 7))
    for i in range(layers):
      seq = nn.Sequential(nn.LeakyReLU(0.1), nn.Conv1d(d, d, 3, dilation=3))
      setattr(self, f"encoder{i}", seq)
    self.pooling = nn.AdaptiveAvgPool1d(1)

  def forward(self, x):  # [B, 73, 27]
    out = self.first(x)
    for i in range(self.layers):
      out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
    return self.pooling(out)


class EncBlock(nn.Module):
  def __init__(self, cin, cout):
    super().__init__()
    self.conv_0 = nn.Conv2d(cin, cout, 4, 2, 1)
    self.conv_1 = nn.Conv2d(cout, cout, 3, 1, 1)
    self.norm_0 = Adain(cin)
    self.norm_1 = Adain(cout)

  def forward(self, x, z):
    x = self.conv_0(_act(self.norm_0(x, z)))
    return self.conv_1(_act(self.norm_1(x, z)))


class DecBlock(nn.Module):
  def __init__(self, cin, cout, hidden):
    super().__init__()
    self.conv_0 = nn.Conv2d(cin, hidden, 3, 1, 1)
    self.conv_1 = nn.ConvTranspose2d(hidden, cout, 3, 2, 1, output_padding=1)
    self.conv_s = nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
    self.norm_0 = Adain(cin)
    self.norm_1 = Adain(hidden)
    self.norm_s = Adain(cin)

  def forward(self, x, z):
    s = self.conv_s(_act(self.norm_s(x, z)))
    d = self.conv_0(_act(self.norm_0(x, z)))
    return s + self.conv_1(_act(self.norm_1(d, z)))


class Encoder(nn.Module):
  def __init__(self, base=32, cap=256, layers=5):
    super().__init__()
    self.layers = layers
    self.input_layer = nn.Conv2d(3, base, 7, 1, 3)
    for i in range(layers):
      cin, cout = min(base * 2**i, cap), min(base * 2 ** (i + 1), cap)
      setattr(self, f"encoder{i}", EncBlock(cin, cout))

  def forward(self, x, z):
    out = [self.input_layer(x)]
    for i in range(self.layers):
      out.append(getattr(self, f"encoder{i}")(out[-1], z))
    return out


class Decoder(nn.Module):
  def __init__(self, base=32, cap=256, enc_layers=5, dec_layers=3):
    super().__init__()
    self.range = range(enc_layers - dec_layers, enc_layers)
    for i in self.range:
      cin = min(base * 2 ** (i + 1), cap) * (1 if i == enc_layers - 1 else 2)
      cout = min(base * 2**i, cap)
      setattr(self, f"decoder{i}", DecBlock(cin, cout, cout))

  def forward(self, skips, z):
    skips = list(skips)
    out = skips.pop()
    for i in reversed(self.range):
      out = getattr(self, f"decoder{i}")(out, z)
      out = torch.cat([out, skips.pop()], 1)
    return out


class Hourglass(nn.Module):
  def __init__(self):
    super().__init__()
    self.encoder = Encoder()
    self.decoder = Decoder()

  def forward(self, x, z):
    return self.decoder(self.encoder(x, z), z)


def _deform(flow):
  _, _, h, w = flow.shape
  norm = torch.cat([2 * flow[:, :1] / (w - 1), 2 * flow[:, 1:] / (h - 1)], 1)
  xs = 2 * torch.arange(w, dtype=flow.dtype) / (w - 1) - 1
  ys = 2 * torch.arange(h, dtype=flow.dtype) / (h - 1) - 1
  grid = torch.stack(
    [xs.view(1, -1).expand(h, w), ys.view(-1, 1).expand(h, w)], -1
  )
  return grid[None] + norm.permute(0, 2, 3, 1)


def warp(image, flow):
  grid = _deform(flow)
  h, w = image.shape[2:]
  if grid.shape[1:3] != (h, w):
    grid = grid.permute(0, 3, 1, 2)
    grid = F.interpolate(
      grid, size=(h, w), mode="bilinear", align_corners=False
    )
    grid = grid.permute(0, 2, 3, 1)
  return F.grid_sample(image, grid, align_corners=False)


class WarpingNet(nn.Module):
  def __init__(self):
    super().__init__()
    self.hourglass = Hourglass()
    self.flow_out = nn.Sequential(
      LayerNorm2d(256), nn.LeakyReLU(0.1), nn.Conv2d(256, 2, 7, 1, 3)
    )

  def forward(self, image, z):
    flow = self.flow_out(self.hourglass(image, z))
    return flow, warp(image, flow)


class ConvNormAct(nn.Module):
  def __init__(self, cin, cout, k, pool=False, upsample=False):
    super().__init__()
    self.model = nn.Sequential(
      nn.Conv2d(cin, cout, k, 1, k // 2), LayerNorm2d(cout), nn.LeakyReLU(0.1)
    )
    self.pool, self.upsample = pool, upsample

  def forward(self, x):
    if self.upsample:
      x = F.interpolate(x, scale_factor=2)
    x = self.model(x)
    return F.avg_pool2d(x, 2) if self.pool else x


class ResBlock(nn.Module):
  def __init__(self, c):
    super().__init__()
    self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
    self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
    self.norm1 = Adain(c)
    self.norm2 = Adain(c)

  def forward(self, x, z):
    dx = _act(self.norm1(self.conv1(x), z))  # overwritten, as in PIRender
    dx = self.norm2(self.conv2(x), z)
    return dx + x


class ResBlocks(nn.Module):
  def __init__(self, n, c):
    super().__init__()
    self.n = n
    for r in range(n):
      setattr(self, f"res{r}", ResBlock(c))

  def forward(self, x, z):
    for r in range(self.n):
      x = getattr(self, f"res{r}")(x, z)
    return x


class FineEncoder(nn.Module):
  def __init__(self, base=64, cap=256, layers=3):
    super().__init__()
    self.layers = layers
    self.first = ConvNormAct(6, base, 7)
    for i in range(layers):
      cin, cout = min(base * 2**i, cap), min(base * 2 ** (i + 1), cap)
      setattr(self, f"down{i}", ConvNormAct(cin, cout, 3, pool=True))

  def forward(self, x):
    out = [self.first(x)]
    for i in range(self.layers):
      out.append(getattr(self, f"down{i}")(out[-1]))
    return out


class FinalBlock(nn.Module):
  def __init__(self, cin):
    super().__init__()
    self.model = nn.Sequential(nn.Conv2d(cin, 3, 7, 1, 3))

  def forward(self, x):
    return torch.tanh(self.model(x))


class FineDecoder(nn.Module):
  def __init__(self, base=64, cap=256, layers=3, blocks=2):
    super().__init__()
    self.layers = layers
    for i in range(layers):
      cin, cout = min(base * 2 ** (i + 1), cap), min(base * 2**i, cap)
      setattr(self, f"up{i}", ConvNormAct(cin, cout, 3, upsample=True))
      setattr(self, f"res{i}", ResBlocks(blocks, cin))
      setattr(self, f"jump{i}", ConvNormAct(cout, cout, 3))
    self.final = FinalBlock(base)

  def forward(self, skips, z):
    skips = list(skips)
    out = skips.pop()
    for i in reversed(range(self.layers)):
      out = getattr(self, f"res{i}")(out, z)
      out = getattr(self, f"up{i}")(out)
      out = getattr(self, f"jump{i}")(skips.pop()) + out
    return self.final(out)


class EditingNet(nn.Module):
  def __init__(self):
    super().__init__()
    self.encoder = FineEncoder()
    self.decoder = FineDecoder()

  def forward(self, image, warped, z):
    return self.decoder(self.encoder(torch.cat([image, warped], 1)), z)


class FaceGenerator(nn.Module):
  def __init__(self):
    super().__init__()
    self.mapping_net = MappingNet()
    self.warpping_net = WarpingNet()
    self.editing_net = EditingNet()

  def forward(self, image, driving):  # [B, 3, 256, 256], [B, 73, 27]
    z = self.mapping_net(driving)
    flow, warped = self.warpping_net(image, z)
    fake = self.editing_net(image, warped, z)
    return {"flow_field": flow, "warp_image": warped, "fake_image": fake}


def random_generator(seed: int = 0, scale: float = 1.0) -> FaceGenerator:
  """Random weights; `scale` multiplies the default init, so that flows
  reach several pixels and every path of the warp is exercised."""
  torch.manual_seed(seed)
  net = FaceGenerator().eval()
  with torch.no_grad():
    for name, p in net.named_parameters():
      if "flow_out.2" in name:
        p.mul_(scale)
  return net
