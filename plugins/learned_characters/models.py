"""The torch side of ``character-ml``: three small models, their training and batched sampling.

- :class:`NameLM`: a character-level GRU language model conditioned on a style token (an embedding fed
  with every character); sampled step by step with its recurrent state.
- :class:`StatsMixture`: role -> a mixture of Gaussians over the additive log-ratio of the six attribute
  *proportions*; :func:`plugins.learned_characters.data.allocate` turns a sample into exact integers.
- :class:`SpriteVAE`: a conditional convolutional VAE over 16x16 one-hot palette-slot sprites.

Sampling is batch-invariant: every row (one character) draws its random numbers from its own
``torch.Generator`` in a fixed amount per attempt, so a character is the same whether it is made alone or in
a batch of a thousand. Everything runs in fp32 on the CPU. Weights are safetensors (config, vocabulary and
training names in the header metadata); nothing here unpickles.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.errors import InputError
from engine.serialize import read_bytes
from engine.weights import MAX_WEIGHTS_BYTES, check_config, check_safetensors, load_safetensors, save_safetensors

from ..rules import ATTRS
from .data import (MAX_NAME, MIN_NAME, N_SLOTS, NAME_ALPHABET, ROLE_NAMES, SPRITE_SIZE, SpriteArt, augment,
                   cleanup_many, outline)

FORMAT = "conjure.character-ml/1"
EOS = 0  # token 0 starts and ends every name


# --------------------------------------------------------------------------------------------- names
class NameLM(nn.Module):
    def __init__(self, n_styles: int, vocab: int = len(NAME_ALPHABET) + 1, emb: int = 32, style_emb: int = 16,
                 hidden: int = 160, dropout: float = 0.0):
        super().__init__()
        self.vocab, self.hidden = vocab, hidden
        self.drop = nn.Dropout(dropout)
        self.emb = nn.Embedding(vocab, emb)
        self.style = nn.Embedding(n_styles, style_emb)
        self.h0 = nn.Linear(style_emb, hidden)
        self.gru = nn.GRU(emb + style_emb, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def initial(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.style(style)
        return s, torch.tanh(self.h0(s)).unsqueeze(0)

    def forward(self, tokens: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        s, h = self.initial(style)
        x = torch.cat([self.emb(tokens), s.unsqueeze(1).expand(-1, tokens.shape[1], -1)], dim=-1)
        y, _ = self.gru(self.drop(x), h)
        return self.out(self.drop(y))


def encode_names(names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher-forcing inputs (EOS + name, padded with EOS) and targets (name + EOS, padded with -100)."""
    idx = {c: i + 1 for i, c in enumerate(NAME_ALPHABET)}
    t = max(len(n) for n in names) + 1
    inp = torch.zeros(len(names), t, dtype=torch.long)
    tgt = torch.full((len(names), t), -100, dtype=torch.long)
    for r, n in enumerate(names):
        ids = [idx[c] for c in n]
        inp[r, 1:len(ids) + 1] = torch.tensor(ids)
        tgt[r, :len(ids)] = torch.tensor(ids)
        tgt[r, len(ids)] = EOS
    return inp, tgt


@torch.inference_mode()
def _sample_once(model: NameLM, style: torch.Tensor, u: torch.Tensor, temperature: float) -> list[str]:
    """One name per row; ``u`` holds (rows, MAX_NAME + 1) uniforms, one per step (inverse-CDF sampling)."""
    rows = style.shape[0]
    s, h = model.initial(style)
    tok = torch.zeros(rows, dtype=torch.long)
    out = torch.zeros(rows, MAX_NAME, dtype=torch.long)
    done = torch.zeros(rows, dtype=torch.bool)
    for step in range(MAX_NAME + 1):
        x = torch.cat([model.emb(tok), s], dim=-1).unsqueeze(1)
        y, h = model.gru(x, h)
        logits = model.out(y[:, 0]) / temperature
        if step < MIN_NAME:
            logits[:, EOS] = -math.inf
        if step == MAX_NAME:
            tok = torch.zeros(rows, dtype=torch.long)
        else:
            cdf = torch.cumsum(torch.softmax(logits, dim=-1), dim=-1)
            target = u[:, step:step + 1] * cdf[:, -1:]
            tok = (cdf < target).sum(dim=-1).clamp(max=model.vocab - 1)
        tok = torch.where(done, torch.zeros_like(tok), tok)
        if step < MAX_NAME:
            out[:, step] = tok
        done |= tok == EOS
        if bool(done.all()):
            break
    names = []
    for row in out.tolist():
        chars = []
        for t in row:
            if t == EOS:
                break
            chars.append(NAME_ALPHABET[t - 1])
        names.append("".join(chars))
    return names


def sample_names(model: NameLM, styles: Sequence[int], gens: Sequence[torch.Generator], temperature: float,
                 accept: Callable[[int, str], bool], max_tries: int = 40) -> tuple[list[str], list[int]]:
    """Names for many rows at once; a row whose name ``accept(row, name)`` refuses is resampled (from its own
    generator). Returns the names (``""`` when every try failed) and how many resamples each row took."""
    n = len(styles)
    names = [""] * n
    tries = [0] * n
    active = list(range(n))
    style_t = torch.tensor(list(styles), dtype=torch.long)
    for attempt in range(max_tries):
        if not active:
            break
        u = torch.stack([torch.rand(MAX_NAME + 1, generator=gens[i]) for i in active])
        got = _sample_once(model, style_t[active], u, temperature)
        still = []
        for i, name in zip(active, got):  # row order: acceptance may depend on earlier rows (unique casts)
            if accept(i, name):
                names[i], tries[i] = name, attempt
            else:
                still.append(i)
        active = still
    for i in active:
        tries[i] = max_tries
    return names, tries


# --------------------------------------------------------------------------------------------- stats
class StatsMixture(nn.Module):
    def __init__(self, n_roles: int, n_attrs: int = len(ATTRS), k: int = 4, hidden: int = 64):
        super().__init__()
        self.k, self.d = k, n_attrs - 1
        self.role = nn.Embedding(n_roles, 16)
        self.net = nn.Sequential(nn.Linear(16, hidden), nn.Tanh(), nn.Linear(hidden, k * (1 + 2 * self.d)))

    def forward(self, role: torch.Tensor):
        o = self.net(self.role(role))
        k, d = self.k, self.d
        logit_pi = o[:, :k]
        mu = o[:, k:k + k * d].reshape(-1, k, d)
        log_sigma = o[:, k + k * d:].reshape(-1, k, d).clamp(-4.0, 2.0)
        return logit_pi, mu, log_sigma

    def nll(self, role: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logit_pi, mu, log_sigma = self(role)
        z = (y.unsqueeze(1) - mu) / log_sigma.exp()
        comp = -0.5 * (z ** 2).sum(-1) - log_sigma.sum(-1) - 0.5 * self.d * math.log(2 * math.pi)
        return -(torch.log_softmax(logit_pi, -1) + comp).logsumexp(-1).mean()


def alr(rows: np.ndarray) -> np.ndarray:
    """Additive log-ratio of attribute proportions (the last attribute is the reference)."""
    p = rows.astype(np.float64) / rows.sum(axis=1, keepdims=True)
    return (np.log(p[:, :-1]) - np.log(p[:, -1:])).astype(np.float32)


@torch.inference_mode()
def sample_proportions(model: StatsMixture, roles: Sequence[int], gens: Sequence[torch.Generator],
                       spread: float = 1.0) -> np.ndarray:
    """(rows, 6) attribute proportions; each row draws one uniform and five normals from its generator."""
    u = torch.stack([torch.rand(1, generator=g) for g in gens])
    eps = torch.stack([torch.randn(model.d, generator=g) for g in gens])
    logit_pi, mu, log_sigma = model(torch.tensor(list(roles), dtype=torch.long))
    cdf = torch.cumsum(torch.softmax(logit_pi, -1), -1)
    comp = (cdf < u * cdf[:, -1:]).sum(-1).clamp(max=model.k - 1)
    rows = torch.arange(len(gens))
    y = mu[rows, comp] + spread * log_sigma[rows, comp].exp() * eps
    y = torch.cat([y, torch.zeros(len(gens), 1)], dim=-1)
    return torch.softmax(y.double(), -1).numpy()


# --------------------------------------------------------------------------------------------- sprites
FACINGS = 2  # down and side idle frames, modelled jointly


class SpriteVAE(nn.Module):
    """A conditional convolutional VAE over the two idle frames of a character (facing down and facing side)
    as one-hot palette slots, ``2 * N_SLOTS`` channels of 16x16; the role is embedded into encoder and
    decoder. A Gaussian mixture per role fitted to the training codes after training (``prior_logw``,
    ``prior_mu``, ``prior_chol``: ``components`` each) is the prior new characters are drawn from."""

    def __init__(self, n_roles: int, latent: int = 24, width: int = 32, role_emb: int = 8, components: int = 4):
        super().__init__()
        self.latent, self.width, self.components = latent, width, components
        w, c = width, FACINGS * N_SLOTS
        self.role = nn.Embedding(n_roles, role_emb)
        self.enc = nn.Sequential(
            nn.Conv2d(c, w, 3, 1, 1), nn.LeakyReLU(0.1),
            nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.1),  # 8x8
            nn.Conv2d(2 * w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.1),  # 4x4
            nn.Flatten())
        self.to_stats = nn.Linear(2 * w * 16 + role_emb, 2 * latent)
        self.from_z = nn.Linear(latent + role_emb, 2 * w * 16)
        self.dec = nn.Sequential(
            nn.LeakyReLU(0.1), nn.Unflatten(1, (2 * w, 4, 4)),
            nn.ConvTranspose2d(2 * w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.1),  # 8x8
            nn.ConvTranspose2d(2 * w, w, 4, 2, 1), nn.LeakyReLU(0.1),  # 16x16
            nn.Conv2d(w, c, 3, 1, 1))
        self.register_buffer("prior_logw", torch.zeros(n_roles, components))
        self.register_buffer("prior_mu", torch.zeros(n_roles, components, latent))
        self.register_buffer("prior_chol", torch.eye(latent).repeat(n_roles, components, 1, 1))

    def encode(self, x: torch.Tensor, role: torch.Tensor):
        h = torch.cat([self.enc(x), self.role(role)], dim=-1)
        mu, logvar = self.to_stats(h).chunk(2, dim=-1)
        return mu, logvar.clamp(-8, 4)

    def decode(self, z: torch.Tensor, role: torch.Tensor) -> torch.Tensor:
        """(rows, FACINGS, N_SLOTS, 16, 16) logits."""
        out = self.dec(self.from_z(torch.cat([z, self.role(role)], dim=-1)))
        return out.reshape(out.shape[0], FACINGS, N_SLOTS, SPRITE_SIZE, SPRITE_SIZE)


def onehot(grids: np.ndarray) -> torch.Tensor:
    """(n, FACINGS, 16, 16) slot grids -> (n, FACINGS * N_SLOTS, 16, 16) floats."""
    x = torch.from_numpy(grids.astype(np.int64))
    return F.one_hot(x, N_SLOTS).permute(0, 1, 4, 2, 3).reshape(len(grids), -1, SPRITE_SIZE, SPRITE_SIZE).float()


def slot_onehot(grids: np.ndarray) -> torch.Tensor:
    """(n, h, w) slot grids -> (n, h * w * N_SLOTS) float32 one-hot rows (exact integer dot products)."""
    x = torch.from_numpy(grids.reshape(len(grids), -1).astype(np.int64))
    return F.one_hot(x, N_SLOTS).reshape(len(grids), -1).float()


#: a generated idle frame must differ from every training sprite's in more than this many pixels
NOVELTY_PIXELS = 8
MIN_PIXELS = 12  # fewer colored pixels than this in a facing is not a character
SPRITE_TRIES = 8


@torch.inference_mode()
def sample_sprites(model: SpriteVAE, train_onehot: torch.Tensor, roles: Sequence[int],
                   gens: Sequence[torch.Generator], variety: float, symmetric: bool
                   ) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """Clean (down, side) slot grids without outline, one pair per row, drawn from the role's fitted mixture
    (a component ``c`` by its weight, then ``z = prior_mu[role, c] + variety * prior_chol[role, c] @ eps``)
    and decoded at the most likely slot per pixel.

    A row is drawn again (from its own generator, one uniform and ``latent`` normals per try) while its outlined down idle
    frame is within :data:`NOVELTY_PIXELS` of a training sprite's (``train_onehot``: the training sprites'
    outlined down idle frames as :func:`slot_onehot` columns, (256 * N_SLOTS, n)), or a
    facing has fewer than :data:`MIN_PIXELS` colored pixels; after :data:`SPRITE_TRIES` the last draw is kept.
    Returns the pairs and how many redraws each row took.
    """
    n = len(roles)
    out: list = [None] * n
    tries = [0] * n
    role_t = torch.tensor(list(roles), dtype=torch.long)
    ref = train_onehot  # (pixels * slots, m): Hamming distances by one matrix product
    active = list(range(n))
    for attempt in range(SPRITE_TRIES):
        if not active:
            break
        u = torch.stack([torch.rand(1, generator=gens[i]) for i in active])
        eps = torch.stack([torch.randn(model.latent, generator=gens[i]) for i in active])
        r = role_t[active]
        cdf = torch.cumsum(torch.softmax(model.prior_logw[r], -1), -1)
        c = (cdf < u * cdf[:, -1:]).sum(-1).clamp(max=model.components - 1)
        z = model.prior_mu[r, c] + variety * torch.einsum("nij,nj->ni", model.prior_chol[r, c], eps)
        idx = torch.max(model.decode(z, r), 2).indices.to(torch.uint8).numpy()
        downs_clean, sides_clean = cleanup_many(idx[:, 0], symmetric), cleanup_many(idx[:, 1], False)
        pairs = list(zip(downs_clean, sides_clean))
        downs = outline(downs_clean)
        pixels = downs.shape[1] * downs.shape[2]
        dist = (pixels - (slot_onehot(downs) @ ref)).min(-1).values.numpy() if ref.shape[1] \
            else np.full(len(pairs), 1 << 16)
        ok = ((dist > NOVELTY_PIXELS) & ((downs_clean >= 2).sum(axis=(1, 2)) >= MIN_PIXELS)
              & ((sides_clean >= 2).sum(axis=(1, 2)) >= MIN_PIXELS)).tolist()
        still = []
        for k, i in enumerate(active):
            out[i], tries[i] = pairs[k], attempt
            if not ok[k]:
                still.append(i)
        active = still
    for i in active:
        tries[i] = SPRITE_TRIES
    return out, tries


# --------------------------------------------------------------------------------------------- files
def _meta(kind: str, config: dict, **extra: str) -> dict[str, str]:
    return {"format": FORMAT, "part": kind, "config": json.dumps(config, sort_keys=True), **extra}


def read_part(path: Path, kind: str):
    """Load one part's module and metadata from a safetensors file (header checked first)."""
    header = check_safetensors(read_bytes(path, limit=MAX_WEIGHTS_BYTES), str(path))
    meta = header.get("__metadata__", {})
    if meta.get("format") != FORMAT or meta.get("part") != kind:
        raise InputError(f"{path}: not a character-ml {kind} model (format {meta.get('format')!r}, "
                         f"part {meta.get('part')!r})")
    try:
        config = json.loads(meta["config"])
    except (KeyError, ValueError, RecursionError):
        raise InputError(f"{path}: model config missing or not JSON") from None
    check_config(config, {"emb": (1, 512), "hidden": (1, 1024), "style_emb": (1, 256), "dropout": (0.0, 1.0),
                          "latent": (1, 256), "width": (1, 256), "k": (1, 64),
                          "components": (1, 16)}, str(path))
    tensors = load_safetensors(path)
    try:
        if kind == "names":
            styles = json.loads(meta["styles"])
            model = NameLM(len(styles), **config)
            extra = {"styles": styles, "training_names": frozenset(json.loads(meta["training_names"])),
                     "names_by_style": json.loads(meta.get("names_by_style", "{}"))}
        elif kind == "stats":
            roles = json.loads(meta["roles"])
            model = StatsMixture(len(roles), **config)
            extra = {"roles": roles}
        else:
            roles = json.loads(meta["roles"])
            model = SpriteVAE(len(roles), **config)
            extra = {"roles": roles}
            for key in ("train_grids", "train_roles", "heldout_grids", "heldout_roles"):
                extra[key] = tensors.pop(key).numpy()
            g = extra["train_grids"]
            if g.ndim != 4 or g.shape[1:] != (FACINGS, SPRITE_SIZE, SPRITE_SIZE) or g.dtype != np.uint8:
                raise ValueError(f"train_grids of shape {g.shape}")
            extra["train_onehot"] = slot_onehot(outline(g[:, 0])).T.contiguous()
        model.load_state_dict(tensors, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: weights do not fit the {kind} model ({type(e).__name__}: {e})") from None
    model.eval()
    return model, extra


# --------------------------------------------------------------------------------------------- training
TINY = {"names": {"hidden": 32, "emb": 8, "style_emb": 4}, "stats": {"hidden": 16, "k": 2},
        "sprites": {"latent": 4, "width": 8, "components": 2}}
#: one epoch = one pass over a part's data (the sprite corpus counts ``SPRITE_COPIES`` augmented copies)
DEFAULT_EPOCHS = 40
SPRITE_COPIES = 8


def _adam_loop(params, steps: int, lr: float, loss_fn, progress, label: str) -> tuple[float, float, list[float]]:
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), eta_min=lr * 0.05)
    hist = []
    for step in range(steps):
        loss = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        hist.append(float(loss.detach()))
        progress.advance(1, part=label, loss=hist[-1])
    k = max(1, min(20, steps // 5))
    return float(np.mean(hist[:k])), float(np.mean(hist[-k:])), hist


def _epoch_batches(n: int, batch: int, seed: int):
    """(steps per epoch, ``indices(step)``): minibatches that walk a fresh seeded permutation each epoch."""
    per_epoch = max(1, math.ceil(n / batch))
    g = torch.Generator().manual_seed(seed)
    perm: list[torch.Tensor] = []

    def indices(step: int) -> torch.Tensor:
        e, b = divmod(step, per_epoch)
        while e >= len(perm):
            perm.append(torch.randperm(n, generator=g))
        return perm[e][b * batch:(b + 1) * batch]

    return per_epoch, indices


def train_names(names: dict[str, list[str]], out: Path, epochs: int, seed: int, tiny: bool, progress_factory):
    styles = sorted(names)
    config = TINY["names"] if tiny else {"hidden": 128, "emb": 32, "style_emb": 16, "dropout": 0.25}
    flat = [(n, si) for si, s in enumerate(styles) for n in names[s]]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(flat))
    n_val = max(1, len(flat) // 20) if len(flat) >= 40 else 0
    val = [flat[i] for i in order[:n_val]]
    trn = [flat[i] for i in order[n_val:]]
    model = NameLM(len(styles), **config)
    per_epoch, batch_at = _epoch_batches(len(trn), 64, seed)
    steps = epochs * per_epoch
    inp, tgt = encode_names([n for n, _ in trn])
    sty = torch.tensor([s for _, s in trn], dtype=torch.long)

    def loss_fn(step):
        ix = batch_at(step)
        logits = model(inp[ix], sty[ix])
        return F.cross_entropy(logits.reshape(-1, model.vocab), tgt[ix].reshape(-1), ignore_index=-100)

    with progress_factory(steps, "names") as p:
        first, last, _ = _adam_loop(list(model.parameters()), steps, 3e-3, loss_fn, p, "names")
    metrics = {"names_loss_first": round(first, 4), "names_loss_last": round(last, 4)}
    model.eval()
    if val:
        with torch.no_grad():
            vi, vt = encode_names([n for n, _ in val])
            vl = F.cross_entropy(model(vi, torch.tensor([s for _, s in val])).reshape(-1, model.vocab),
                                 vt.reshape(-1), ignore_index=-100)
        metrics["names_val_loss"] = round(float(vl), 4)
    all_names = sorted({n for n, _ in flat})
    save_safetensors(model.state_dict(), out / "names.safetensors",
                     _meta("names", config, styles=json.dumps(styles), training_names=json.dumps(all_names),
                           names_by_style=json.dumps({s: sorted(set(names[s])) for s in styles}, sort_keys=True)))
    return metrics, config


def train_stats(roles: list[str], rows: np.ndarray, out: Path, epochs: int, seed: int, tiny: bool,
                progress_factory):
    config = TINY["stats"] if tiny else {"hidden": 64, "k": 4}
    names = sorted(set(roles))
    model = StatsMixture(len(names), **config)
    r = torch.tensor([names.index(x) for x in roles], dtype=torch.long)
    y = torch.from_numpy(alr(rows))
    per_epoch, batch_at = _epoch_batches(len(r), 128, seed)
    steps = epochs * per_epoch

    def loss_fn(step):
        ix = batch_at(step)
        return model.nll(r[ix], y[ix])

    with progress_factory(steps, "stats") as p:
        first, last, _ = _adam_loop(list(model.parameters()), steps, 1e-2, loss_fn, p, "stats")
    with torch.no_grad():
        full = float(model.nll(r, y))
    save_safetensors(model.state_dict(), out / "stats.safetensors",
                     _meta("stats", config, roles=json.dumps(names)))
    return {"stats_nll_first": round(first, 4), "stats_nll_last": round(last, 4), "stats_nll": round(full, 4)}, config


def fit_mixture(x: torch.Tensor, k: int, iters: int = 60) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A Gaussian mixture fitted to rows ``x`` (float64) by EM: (log weights (k,), means (k, d), Cholesky
    factors (k, d, d)). Deterministic: means start at farthest-point picks from the row nearest the mean;
    covariances are shrunk half way to their diagonal (few points per component). Components beyond
    ``len(x) // 6`` get weight 0 (log weight -1e9)."""
    n, d = x.shape
    used = max(1, min(k, n // 6))
    start = int(((x - x.mean(0)) ** 2).sum(1).argmin())
    picks = [start]
    for _ in range(used - 1):
        dist = torch.cdist(x, x[picks]).min(1).values
        picks.append(int(dist.argmax()))
    means = x[picks].clone()
    eye = torch.eye(d, dtype=x.dtype)

    def shrink(cov):
        return 0.5 * cov + 0.5 * torch.diag_embed(torch.diagonal(cov, dim1=-2, dim2=-1)) + 1e-3 * eye

    resp = F.one_hot(torch.cdist(x, means).argmin(1), used).to(x.dtype)
    for _ in range(iters):
        nk = resp.sum(0) + 1e-9
        means = resp.T @ x / nk[:, None]
        diff = x[None] - means[:, None]  # (k, n, d)
        cov = shrink(torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None])
        chol = torch.linalg.cholesky(cov)
        sol = torch.linalg.solve_triangular(chol, diff.transpose(1, 2), upper=False)  # (k, d, n)
        logdet = 2 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        logp = -0.5 * (sol ** 2).sum(1) - 0.5 * logdet[:, None] + torch.log(nk / n)[:, None]  # (k, n)
        resp = torch.softmax(logp.T, dim=1)
    logw = torch.full((k,), -1e9, dtype=x.dtype)
    logw[:used] = torch.log(resp.sum(0) / n)
    mu_out = torch.zeros(k, d, dtype=x.dtype)
    mu_out[:used] = means
    chol_out = eye.repeat(k, 1, 1)
    chol_out[:used] = chol
    return logw, mu_out, chol_out


HOLDOUT_EVERY = 5  # every 5th sprite of each role is held out of sprite training (for evaluation)


def split_sprites(arts: list[SpriteArt], every: int = HOLDOUT_EVERY) -> tuple[list[SpriteArt], list[SpriteArt]]:
    """(train, held out): every ``every``-th sprite of each role, in file order, is held out."""
    count: dict[str, int] = {}
    train, held = [], []
    for a in arts:
        k = count[a.role] = count.get(a.role, -1) + 1
        (held if every and len(arts) >= 2 * every and k % every == every - 1 else train).append(a)
    return train, held


def train_sprites(arts: list[SpriteArt], out: Path, epochs: int, seed: int, tiny: bool, progress_factory):
    config = TINY["sprites"] if tiny else {"latent": 24, "width": 32, "components": 4}
    train, held = split_sprites(arts)
    roles_all = sorted({a.role for a in arts})
    model = SpriteVAE(len(roles_all), **config)
    grids = np.stack([np.stack([a.down, a.side]) for a in train])
    roles = torch.tensor([roles_all.index(a.role) for a in train], dtype=torch.long)
    rng = np.random.default_rng(seed)
    g = torch.Generator().manual_seed(seed)
    batch = 32
    steps = epochs * max(1, math.ceil(len(train) * SPRITE_COPIES / batch))
    beta = 0.05

    def loss_fn(step):
        ix = rng.integers(len(train), size=batch)
        aug = augment(grids[ix], rng, recolor=0.2)
        x = torch.from_numpy(aug.astype(np.int64))
        mu, logvar = model.encode(onehot(aug), roles[ix])
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=g)
        logits = model.decode(z, roles[ix])
        rec = F.cross_entropy(logits.permute(0, 2, 1, 3, 4), x, reduction="sum") / batch
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / batch
        warm = min(1.0, step / max(1, steps // 3))
        return rec + beta * warm * kl

    with progress_factory(steps, "sprites") as p:
        first, last, _ = _adam_loop(list(model.parameters()), steps, 2e-3, loss_fn, p, "sprites")
    model.eval()
    with torch.no_grad():  # the corpus through the posterior mean; then a Gaussian per role over the codes
        x = torch.from_numpy(grids.astype(np.int64))
        mu, _ = model.encode(onehot(grids), roles)
        acc = float((torch.max(model.decode(mu, roles), 2).indices == x).float().mean())
        for r in range(len(roles_all)):
            codes = mu[roles == r].double()
            if len(codes) == 0:
                continue
            logw, means, chols = fit_mixture(codes, model.components)
            model.prior_logw[r] = logw.float()
            model.prior_mu[r] = means.float()
            model.prior_chol[r] = chols.float()
    tensors = dict(model.state_dict())
    held_grids = np.stack([np.stack([a.down, a.side]) for a in held]) if held else \
        np.zeros((0, FACINGS, SPRITE_SIZE, SPRITE_SIZE), np.uint8)
    tensors["train_grids"] = torch.from_numpy(grids.astype(np.uint8))
    tensors["train_roles"] = roles.to(torch.int64)
    tensors["heldout_grids"] = torch.from_numpy(held_grids.astype(np.uint8))
    tensors["heldout_roles"] = torch.tensor([roles_all.index(a.role) for a in held], dtype=torch.int64)
    save_safetensors(tensors, out / "sprites.safetensors", _meta("sprites", config, roles=json.dumps(roles_all)))
    return {"sprites_loss_first": round(first, 3), "sprites_loss_last": round(last, 3),
            "sprites_recon_pixel_acc": round(acc, 4), "sprites_train": len(train), "sprites_heldout": len(held)}, config


def train_all(corpora, out: Path, epochs: int | None, seed: int, options: dict, progress_factory) -> dict:
    """Train every part that has data in ``corpora``; return the engine's train result dict."""
    tiny = bool(options.get("tiny", False))
    threads = torch.get_num_threads()
    torch.set_num_threads(int(options.get("threads", 1)))
    weights, config, metrics, seconds = [], {}, {}, {}
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if corpora.names:
                t0 = time.perf_counter()
                m, c = train_names(corpora.names, out, epochs or DEFAULT_EPOCHS, seed, tiny,
                                   progress_factory)
                metrics.update(m)
                config["names"] = c
                weights.append("names.safetensors")
                seconds["names"] = round(time.perf_counter() - t0, 1)
            if corpora.stats is not None:
                t0 = time.perf_counter()
                m, c = train_stats(*corpora.stats, out, epochs or DEFAULT_EPOCHS, seed, tiny,
                                   progress_factory)
                metrics.update(m)
                config["stats"] = c
                weights.append("stats.safetensors")
                seconds["stats"] = round(time.perf_counter() - t0, 1)
            if corpora.sprites:
                t0 = time.perf_counter()
                m, c = train_sprites(corpora.sprites, out, epochs or DEFAULT_EPOCHS, seed, tiny,
                                     progress_factory)
                metrics.update(m)
                config["sprites"] = c
                weights.append("sprites.safetensors")
                seconds["sprites"] = round(time.perf_counter() - t0, 1)
    finally:
        torch.set_num_threads(threads)
    metrics["seconds_per_part"] = seconds
    return {"weights": weights, "config": config, "metrics": metrics, "epochs": epochs}
