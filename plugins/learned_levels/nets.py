"""The torch modules of the learned level generators (imported on first use only: this imports torch).

- :class:`DungeonVAENet`: a conditional convolutional VAE over one-hot ``C×H×W`` top-down grids (H, W multiples
  of 8; rooms and maps are padded to them); the
  condition vector (openness, enemy density; standardised) goes into both encoder and decoder.
- :class:`PlatformerG` / :class:`PlatformerD`: a DCGAN over one-hot ``C×H×32`` side-view windows (H a multiple
  of 4: a corpus's levels are padded at the top with air).

All inference is fp32 on CPU; decoding to tiles uses ``torch.max(x, 1).indices``.

**Batch invariance.** A generated level must not depend on which batch computed it, but CPU GEMM and
``Conv2d`` kernels pick different blockings for different batch sizes, so row ``i`` of a batch differs from the
same input alone in the last bits (measured ≤ 1e-7 on these nets). :func:`decode_tiles` therefore treats the
batch-1 result as canonical: a batched sample whose every cell has a top-1/top-2 logit margin above
``TIE_MARGIN`` (1e-4, a thousand times the deviation) must decode to the same tiles; any other sample is
recomputed alone. Output is thus identical for any batch size while the common case keeps batched kernels.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


class DungeonVAENet(nn.Module):
    def __init__(self, classes: int = 7, zdim: int = 32, cdim: int = 2, ch: int = 32, size: int = 32,
                 width: int | None = None):
        super().__init__()
        width = width or size
        self.classes, self.zdim, self.cdim, self.ch, self.size, self.width = classes, zdim, cdim, ch, size, width
        self.sh, self.sw = size // 8, width // 8
        s = 1
        self.enc = nn.Sequential(
            nn.Conv2d(classes + cdim, ch, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch, ch * 2, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(ch * 2, ch * 4, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(),
        )
        cells = self.sh * self.sw
        self.mu = nn.Linear(ch * 4 * cells, zdim)
        self.logvar = nn.Linear(ch * 4 * cells, zdim)
        self.fc = nn.Linear(zdim + cdim, ch * 4 * cells)
        self.dec = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(ch * 4, ch * 2, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch * 2, ch, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(ch, classes, 4, 2, 1),
        )

    def encode(self, x: torch.Tensor, c: torch.Tensor):
        cmap = c[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        h = self.enc(torch.cat([x, cmap], 1))
        return self.mu(h), self.logvar(h).clamp(-8.0, 8.0)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, c], 1)).view(-1, self.ch * 4, self.sh, self.sw)
        return self.dec(h)

    def forward(self, x, c, noise):
        mu, logvar = self.encode(x, c)
        z = mu + noise * torch.exp(0.5 * logvar)
        return self.decode(z, c), mu, logvar


def vae_loss(logits, target, mu, logvar, beta: float, weight=None):
    rec = F.cross_entropy(logits, target, weight=weight, reduction="none").sum((1, 2)).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    return rec + beta * kl, rec, kl


class PlatformerG(nn.Module):
    def __init__(self, classes: int = 10, nz: int = 32, ngf: int = 64, h: int = 16, w: int = 32):
        super().__init__()
        self.classes, self.nz, self.ngf, self.h, self.w = classes, nz, ngf, h, w
        self.fc = nn.Linear(nz, ngf * 2 * (h // 4) * (w // 4))
        self.net = nn.Sequential(
            nn.BatchNorm2d(ngf * 2), nn.ReLU(),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1), nn.BatchNorm2d(ngf), nn.ReLU(),
            nn.ConvTranspose2d(ngf, ngf // 2, 4, 2, 1), nn.BatchNorm2d(ngf // 2), nn.ReLU(),
            nn.ConvTranspose2d(ngf // 2, classes, 3, 1, 1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.ngf * 2, self.h // 4, self.w // 4)
        return self.net(h)


class PlatformerD(nn.Module):
    """Critic with spectral normalisation and a minibatch-stddev channel (against mode collapse); trained
    with the hinge loss. Only used in training."""

    def __init__(self, classes: int = 10, ndf: int = 64, h: int = 16, w: int = 32):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.c1 = sn(nn.Conv2d(classes, ndf, 4, 2, 1))
        self.c2 = sn(nn.Conv2d(ndf + 1, ndf * 2, 4, 2, 1))
        self.fc = sn(nn.Linear(ndf * 2 * (h // 4) * (w // 4), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.c1(x), 0.2)
        std = h.std(0, unbiased=False).mean().expand(h.shape[0], 1, h.shape[2], h.shape[3])
        h = F.leaky_relu(self.c2(torch.cat([h, std], 1)), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)


def one_hot(grids, classes: int) -> torch.Tensor:
    """``(n, h, w)`` int classes → ``(n, classes, h, w)`` float32 one-hot."""
    t = torch.as_tensor(grids, dtype=torch.long)
    return F.one_hot(t, classes).permute(0, 3, 1, 2).to(torch.float32).contiguous()


TIE_MARGIN = 1e-4


def _classes(logits: torch.Tensor, rare) -> torch.Tensor:
    tiles = torch.max(logits, 1).indices
    if rare is not None:
        cls, thr, under = rare
        hit = (torch.log_softmax(logits, 1)[:, cls] > math.log(thr)) & (tiles == under)
        tiles = torch.where(hit, torch.full_like(tiles, cls), tiles)
    return tiles


def decode_tiles(logits: torch.Tensor, recompute=None, rare=None):
    """Class grids (numpy int64) from logits ``(n, C, h, w)``: the most likely class per cell, and with
    ``rare=(cls, p, under)`` also class ``cls`` wherever its probability exceeds ``p`` on a cell decoded as
    ``under`` (a rare class such as enemies, which the argmax alone would never pick).

    ``recompute(i)`` (given for batches of more than one) returns sample ``i``'s logits computed alone,
    ``(1, C, h, w)``; it is called for every sample with a near-tied cell (top-2 logits, or the rare class's
    log-probability and log ``p``, within ``TIE_MARGIN``), so the result equals decoding each sample alone."""
    tiles = _classes(logits, rare).numpy().copy()
    if recompute is not None and logits.shape[0] > 1:
        top = torch.topk(logits, 2, dim=1).values
        margin = (top[:, 0] - top[:, 1]).amin((1, 2))
        if rare is not None:
            lp = torch.log_softmax(logits, 1)[:, rare[0]]
            margin = torch.minimum(margin, (lp - math.log(rare[1])).abs().amin((1, 2)))
        for i in torch.nonzero(margin <= TIE_MARGIN).flatten().tolist():
            tiles[i] = _classes(recompute(i), rare)[0].numpy()
    return tiles
