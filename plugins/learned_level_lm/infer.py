"""level-lm inference in numpy (no torch at generation time): the same network as :mod:`.model`, float32,
with a KV cache kept in a ring of ``ctx + BACKTRACK`` slots per row (so the sampler can step a row back up
to ``BACKTRACK`` strips and still find the keys of the strips before it).

numpy's per-call overhead is a few microseconds against torch's tens, which is most of the cost of one
strip at batch 1; BLAS runs on one thread (``threadpoolctl``) as the engine's latency paths do.
"""
from __future__ import annotations

import math
import threading

import numpy as np

BACKTRACK = 32
N_BUCKET = 5
SQRT_2_PI = math.sqrt(2.0 / math.pi)


def _ln(x, w, b):
    inv = np.float32(1.0 / x.shape[-1])
    xc = x - np.add.reduce(x, -1, keepdims=True) * inv
    v = np.add.reduce(xc * xc, -1, keepdims=True) * inv
    return xc * (np.float32(1.0) / np.sqrt(v + np.float32(1e-5))) * w + b


def _norm(x):
    """LayerNorm without its scale and shift (folded into the next matmul)."""
    inv = np.float32(1.0 / x.shape[-1])
    xc = x - np.add.reduce(x, -1, keepdims=True) * inv
    return xc * (np.float32(1.0) / np.sqrt(np.add.reduce(xc * xc, -1, keepdims=True) * inv + np.float32(1e-5)))


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_PI * (x + 0.044715 * x * x * x)))


_G1 = np.float32(SQRT_2_PI * 0.044715)
_G0 = np.float32(SQRT_2_PI)


def _gelu2(x):
    """``2 * gelu(x)`` (the tanh form; its 0.5 is folded into the next matmul), in place on a temporary."""
    t = x * x
    t *= _G1
    t += _G0
    t *= x
    np.tanh(t, out=t)
    t += np.float32(1.0)
    t *= x
    return t


class Net:
    """The network's weights as float32 numpy arrays, and its cached step."""

    def __init__(self, tensors: dict, cfg: dict):
        self.cfg = cfg
        self.h, self.K, self.d = cfg["h"], cfg["K"], cfg["d"]
        self.V = self.K - 1
        self.nh = cfg["heads"]
        self.hd = self.d // self.nh
        self.ctx = cfg["ctx"]
        self.ring = self.ctx + BACKTRACK
        n_attr = max(1, cfg["n_attr"])

        def t(name):
            a = tensors.get("net." + name)
            if a is None:
                from engine.errors import InputError

                raise InputError(f"level-lm weights: tensor net.{name} missing")
            return np.ascontiguousarray(np.asarray(a, dtype=np.float32))

        self.emb = t("emb.weight").reshape(self.h * self.K, self.d)
        self.attr = t("attr.weight").reshape(n_attr * N_BUCKET, self.d)
        self.row_off = np.arange(self.h) * self.K
        self._dist = np.arange(self.ctx)[None, :]
        self.attr_off = np.arange(n_attr) * N_BUCKET
        self.layers = []
        for i in range(cfg["layers"]):
            p = f"blocks.{i}."
            self.layers.append({
                "ln1w": t(p + "ln1.weight"), "ln1b": t(p + "ln1.bias"),
                "ln2w": t(p + "ln2.weight"), "ln2b": t(p + "ln2.bias"),
                "qkv": t(p + "qkv.weight").T.copy(), "qkvb": t(p + "qkv.bias"),
                "proj": t(p + "proj.weight").T.copy(), "projb": t(p + "proj.bias"),
                "fc": t(p + "fc.weight").T.copy(), "fcb": t(p + "fc.bias"),
                "out": t(p + "out.weight").T.copy(), "outb": t(p + "out.bias"),
                "rel": t(p + "rel").reshape(self.nh, self.ctx),
            })
            self.layers[-1]["rel4"] = self.layers[-1]["rel"].reshape(1, self.nh, 1, self.ctx)
        self.lnw, self.lnb = t("ln.weight"), t("ln.bias")
        self.head = t("head.weight").T.copy()
        self.headb = t("head.bias")
        # LayerNorm's scale and shift folded into the matmul after it: ln(x) @ W + b = norm(x) @ W' + b'
        for L in self.layers:
            L["qkv_f"] = (L["ln1w"][:, None] * L["qkv"]).astype(np.float32)
            L["qkvb_f"] = (L["ln1b"] @ L["qkv"] + L["qkvb"]).astype(np.float32)
            L["fc_f"] = (L["ln2w"][:, None] * L["fc"]).astype(np.float32)
            L["fcb_f"] = (L["ln2b"] @ L["fc"] + L["fcb"]).astype(np.float32)
        self.head_f = (self.lnw[:, None] * self.head).astype(np.float32)
        self.headb_f = (self.lnb @ self.head + self.headb).astype(np.float32)
        self._emb_cache: dict[bytes, np.ndarray] = {}
        self._fold()
        self.vbig = t("vbig").reshape(self.K, self.V)
        if self.emb.shape[0] != self.h * self.K or self.head.shape != (self.d, self.h * self.V):
            from engine.errors import InputError

            raise InputError("level-lm weights: tensor shapes do not match the config")

    def _fold(self) -> None:
        """Weights for the fused step (version 3): per LayerNorm + matmul one matrix ``[C W' | C]`` (``C`` centres
        ``x``, ``W'`` has the norm's scale folded in), so one matmul gives both the centred input (for the
        variance) and the unscaled product; the attention's ``1/sqrt(hd)`` folded into the query weights;
        GELU's ``0.5`` folded into the MLP's output weights."""
        d = self.d
        C = (np.eye(d) - 1.0 / d).astype(np.float64)
        scale = 1.0 / math.sqrt(self.hd)
        for L in self.layers:
            wq = L["qkv_f"].astype(np.float64)
            bq = L["qkvb_f"].astype(np.float64)
            wq[:, :d] *= scale
            bq[:d] *= scale
            L["Mq"] = np.ascontiguousarray(np.concatenate([C @ wq, C], 1).astype(np.float32))
            L["bq"] = bq.astype(np.float32)
            L["Mfc"] = np.ascontiguousarray(np.concatenate([C @ L["fc_f"].astype(np.float64), C], 1)
                                            .astype(np.float32))
            L["out_h"] = (0.5 * L["out"].astype(np.float64)).astype(np.float32)
            L["relrev"] = np.ascontiguousarray(L["rel"][:, ::-1]).reshape(self.nh, 1, self.ctx)
            L["relT"] = np.ascontiguousarray(L["rel"].T)  # (ctx, nh): bias by distance
        self._hm = np.zeros((self.nh, d), np.float32)  # head h's block of the model dimension
        for h in range(self.nh):
            self._hm[h, h * self.hd:(h + 1) * self.hd] = 1.0
        self._slots = np.arange(self.ring)
        self.Mh = np.ascontiguousarray(np.concatenate([C @ self.head_f.astype(np.float64), C], 1).astype(np.float32))
        self.nq, self.nfc, self.nhd = 3 * d, L["Mfc"].shape[1] - d, self.head_f.shape[1]
        self._x1: dict[bytes, tuple] = {}

    def new_cache(self, batch: int):
        """Per layer (keys, values), each ``(batch * ring, d)``: row ``r``'s position ``p`` is at
        ``r * ring + p % ring``. A batch of one gets a :class:`LineCache` (by position, no ring: the fast
        one-level step)."""
        if batch == 1:
            return LineCache(self)
        shape = (batch * self.ring, self.d)
        return RingCache([(np.zeros(shape, np.float32), np.zeros(shape, np.float32)) for _ in self.layers], batch)

    def _x_qkv1(self, strip: np.ndarray, attrs: np.ndarray) -> tuple:
        """The embedding ``x`` (d,) of a strip with its controls and the first layer's scaled ``q, k, v``
        (3d,), remembered per (strip, controls): they depend on nothing else, and levels repeat strips."""
        key = strip.tobytes() + attrs.tobytes()
        got = self._x1.get(key)
        if got is None:
            if len(self._x1) > 50_000:
                self._x1.clear()
            x = self.embed(strip[None], attrs[None])[0].astype(np.float32)
            got = self._x1[key] = (x, self._ln_mm(x[None], self.layers[0]["Mq"], self.nq)[0]
                                   + self.layers[0]["bq"])
        return got

    @staticmethod
    def _ln_mm(x: np.ndarray, M: np.ndarray, n: int) -> np.ndarray:
        """``norm(x) @ W`` for rows ``x`` (m, d) with ``M = [C W | C]``: the variance in float64 from the
        centred rows the same matmul gives (the one-row step does the same float operations)."""
        z = x @ M
        xc = z[:, n:]
        v = np.add.reduce(xc * xc, -1).astype(np.float64)
        s = (1.0 / np.sqrt(v * (1.0 / xc.shape[1]) + 1e-5)).astype(np.float32)
        out = z[:, :n]
        out *= s[:, None]
        return out

    def step_fused(self, strips, attrs, cache, rows, pos):
        """:meth:`step` on a ring cache (any batch) with the fused weights: the same network as :meth:`step1`
        (logits equal to ~1e-5: a draw near a tie is decoded again alone, see :mod:`.sampler`)."""
        n = len(rows)
        d, nh, hd, ring, ctx = self.d, self.nh, self.hd, self.ring, self.ctx
        x = np.empty((n, d), np.float32)
        qkv = np.empty((n, 3 * d), np.float32)
        for i in range(n):
            x[i], qkv[i] = self._x_qkv1(strips[i], attrs[i])
        base = rows * ring
        slot = base + pos % ring
        if not isinstance(cache, RingCache):  # a plain list of (keys, values) in the same layout
            cache = RingCache(list(cache), len(cache[0][0]) // ring)
        # attend over each row's whole ring in place (no gather): the slots outside its window masked
        N = cache.batch
        every = n == N or 2 * n > N  # all rows (inactive ones with a zero query): no copy of the cache
        if every and n < N:
            P = np.zeros(N, np.int64)
            P[rows] = pos
        else:
            P = pos
        dist = (P[:, None] - self._slots) % ring  # (m, ring): how far back each slot's strip is
        maskadd = np.where((dist < ctx) & (dist <= P[:, None]), np.float32(0.0), np.float32(-np.inf))[:, None, :]
        distc = np.minimum(dist, ctx - 1)
        for li, (L, (ck, cv)) in enumerate(zip(self.layers, cache)):
            if li:
                qkv = self._ln_mm(x, L["Mq"], self.nq)
                qkv += L["bq"]
            ck[slot] = qkv[:, d:2 * d]
            cv[slot] = qkv[:, 2 * d:]
            Q = qkv[:, None, :d] * self._hm  # (n, nh, d): each head's query in its own block
            Kr, Vr = ck.reshape(N, ring, d), cv.reshape(N, ring, d)
            if every and n < N:
                Qm = np.zeros((N, nh, d), np.float32)
                Qm[rows] = Q
                Q = Qm
            elif not every:
                Kr, Vr = Kr[rows], Vr[rows]
            a = Q @ Kr.transpose(0, 2, 1)  # (m, nh, ring)
            a += L["relT"][distc].transpose(0, 2, 1)
            a += maskadd
            a -= np.maximum.reduce(a, -1, keepdims=True)
            np.exp(a, out=a)
            yf = a @ Vr  # (m, nh, d); head h's output is its own block
            yf *= self._hm
            y = np.add.reduce(yf, 1)
            y /= np.repeat(np.add.reduce(a, -1), hd, 1)
            if every and n < N:
                y = y[rows]
            x = x + y.reshape(n, d) @ L["proj"]
            x += L["projb"]
            h = self._ln_mm(x, L["Mfc"], self.nfc)
            h += L["fcb_f"]
            x += _gelu2(h) @ L["out_h"]
            x += L["outb"]
        out = self._ln_mm(x, self.Mh, self.nhd)
        out += self.headb_f
        return out.reshape(n, self.h, self.V)

    def step1(self, strip: np.ndarray, attrs: np.ndarray, cache: "LineCache", p: int) -> np.ndarray:
        """One level's step on a :class:`LineCache`: head logits ``(h, V)`` of the strip at position ``p``
        given the strip before it. The window is a slice of the cache (no gather)."""
        d, nh, hd, ctx = self.d, self.nh, self.hd, self.ctx
        cache.reserve(p)
        x, qkv = self._x_qkv1(strip, attrs)
        lo = max(0, p - ctx + 1)
        T = p + 1 - lo
        invd = 1.0 / d
        for li, L in enumerate(self.layers):
            if li:
                z = x @ L["Mq"]
                xc = z[self.nq:]
                qkv = z[:self.nq]
                qkv *= np.float32(1.0 / math.sqrt(float(np.add.reduce(xc * xc)) * invd + 1e-5))
                qkv += L["bq"]
            Kt, Va = cache.K[li], cache.V[li]
            Kt[:, :, p] = qkv[d:2 * d].reshape(nh, hd)
            Va[:, p, :] = qkv[2 * d:].reshape(nh, hd)
            a = qkv[:d].reshape(nh, 1, hd) @ Kt[:, :, lo:p + 1]
            a += L["relrev"][:, :, ctx - T:]
            a -= np.maximum.reduce(a, -1, keepdims=True)
            np.exp(a, out=a)
            y = (a @ Va[:, lo:p + 1]) / np.add.reduce(a, -1, keepdims=True)
            x = x + y.reshape(d) @ L["proj"]
            x += L["projb"]
            z = x @ L["Mfc"]
            xc = z[self.nfc:]
            h = z[:self.nfc]
            h *= np.float32(1.0 / math.sqrt(float(np.add.reduce(xc * xc)) * invd + 1e-5))
            h += L["fcb_f"]
            x += _gelu2(h) @ L["out_h"]
            x += L["outb"]
        z = x @ self.Mh
        xc = z[self.nhd:]
        out = z[:self.nhd]
        out *= np.float32(1.0 / math.sqrt(float(np.add.reduce(xc * xc)) * invd + 1e-5))
        out += self.headb_f
        return out.reshape(self.h, self.V)

    def embed(self, strips: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        return self.emb[strips + self.row_off].sum(-2) + self.attr[attrs + self.attr_off].sum(-2)

    def step(self, strips: np.ndarray, attrs: np.ndarray, cache, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Head logits ``(n, h, V)`` for the strips at positions ``pos`` (n,) of cache rows ``rows`` (n,),
        given the strips before them ``strips`` (n, h) and the control buckets ``attrs`` (n, n_attr)."""
        if isinstance(cache, LineCache):
            return self.step1(strips[0], attrs[0], cache, int(pos[0]))[None]
        return self.step_fused(strips, attrs, cache, rows, pos)

    def step_v2(self, strips: np.ndarray, attrs: np.ndarray, cache, rows: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """The step of version 2 (unfused weights; kept as a reference for tests and the bench)."""
        n = len(rows)
        d, nh, hd, ring = self.d, self.nh, self.hd, self.ring
        x = self.cached_embed(strips, attrs)
        base = rows * ring
        slot = base + pos % ring
        back = pos[:, None] - self._dist
        if int(pos.min()) >= self.ctx - 1:
            mask = None
        else:
            mask = np.where(back >= 0, np.float32(0.0), np.float32(-1e30))[:, None, None, :]
        win = base[:, None] + back % ring  # (n, ctx) flat cache rows
        scale = np.float32(1.0 / math.sqrt(hd))
        for L, (ck, cv) in zip(self.layers, cache):
            qkv = _norm(x) @ L["qkv_f"] + L["qkvb_f"]
            ck[slot] = qkv[:, d:2 * d]
            cv[slot] = qkv[:, 2 * d:]
            q = qkv[:, :d].reshape(n, nh, 1, hd)
            # np.take: the same rows as ck[win], gathered faster
            keys = np.take(ck, win, axis=0).reshape(n, self.ctx, nh, hd).transpose(0, 2, 3, 1)  # (n, nh, hd, ctx)
            vals = np.take(cv, win, axis=0).reshape(n, self.ctx, nh, hd).transpose(0, 2, 1, 3)  # (n, nh, ctx, hd)
            att = (q @ keys) * scale + L["rel4"]  # (n, nh, 1, ctx)
            if mask is not None:
                att = att + mask
            att = np.exp(att - att.max(-1, keepdims=True))
            att *= np.float32(1.0) / att.sum(-1, keepdims=True)
            y = (att @ vals).reshape(n, d)
            x = x + (y @ L["proj"] + L["projb"])
            x = x + (_gelu(_norm(x) @ L["fc_f"] + L["fcb_f"]) @ L["out"] + L["outb"])
        return (_norm(x) @ self.head_f + self.headb_f).reshape(n, self.h, self.V)

    def cached_embed(self, strips: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """:meth:`embed`, remembered per (strip, controls): levels repeat strips (sky, flat ground) a lot."""
        out = np.empty((len(strips), self.d), dtype=np.float32)
        cache = self._emb_cache
        if len(cache) > 50_000:
            cache.clear()
        for i in range(len(strips)):
            key = strips[i].tobytes() + attrs[i].tobytes()
            e = cache.get(key)
            if e is None:
                e = cache[key] = self.embed(strips[i:i + 1], attrs[i:i + 1])[0].astype(np.float32)
            out[i] = e
        return out

    def window(self, strips: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """No cache: the whole window ``strips`` (n, T, h) (T ≤ ctx) recomputed; head logits (n, h, V) of
        the strip after the window's last (the reference the cache is measured against)."""
        n, T, _ = strips.shape
        x = (self.emb[strips + self.row_off].sum(-2) + self.attr[attrs + self.attr_off].sum(-2)[:, None])
        x = x.astype(np.float32)
        ar = np.arange(T)
        dist = ar[:, None] - ar[None, :]
        ok = dist >= 0
        scale = np.float32(1.0 / math.sqrt(self.hd))
        for L in self.layers:
            qkv = _ln(x, L["ln1w"], L["ln1b"]) @ L["qkv"] + L["qkvb"]
            q, k, v = (qkv[..., i * self.d:(i + 1) * self.d].reshape(n, T, self.nh, self.hd).transpose(0, 2, 1, 3)
                       for i in range(3))
            att = (q @ k.transpose(0, 1, 3, 2)) * scale + L["rel"][:, np.clip(dist, 0, self.ctx - 1)][None]
            att = np.where(ok[None, None], att, np.float32(-1e30))
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            y = (att @ v).transpose(0, 2, 1, 3).reshape(n, T, self.d)
            x = x + (y @ L["proj"] + L["projb"])
            x = x + (_gelu(_ln(x, L["ln2w"], L["ln2b"]) @ L["fc"] + L["fcb"]) @ L["out"] + L["outb"])
        last = x[:, -1]
        return (_ln(last, self.lnw, self.lnb) @ self.head + self.headb).reshape(n, self.h, self.V)


class RingCache(list):
    """The batched step's cache: per layer (keys, values) (a list, as before) of ``batch`` rows of ``ring``
    slots. The step attends over a row's whole ring in place, masking the slots outside its window, rather
    than gathering each window (a copy of the cache every step, slow once other work evicts it)."""

    def __init__(self, layers: list, batch: int):
        super().__init__(layers)
        self.batch = batch


class LineCache:
    """One level's keys and values by position (a batch of one): per layer keys ``(heads, hd, size)`` and
    values ``(heads, size, hd)``, grown as positions arrive; a step's window is a slice."""

    def __init__(self, net: Net, size: int = 256):
        self.net = net
        self.size = 0
        self.K: list[np.ndarray] = []
        self.V: list[np.ndarray] = []
        self._grow(size)

    def _grow(self, size: int) -> None:
        nh, hd = self.net.nh, self.net.hd
        K = [np.zeros((nh, hd, size), np.float32) for _ in self.net.layers]
        V = [np.zeros((nh, size, hd), np.float32) for _ in self.net.layers]
        for a, b in zip(K, self.K):
            a[:, :, :self.size] = b
        for a, b in zip(V, self.V):
            a[:, :self.size] = b
        self.K, self.V, self.size = K, V, size

    def reserve(self, p: int) -> None:
        if p >= self.size:
            self._grow(max(2 * self.size, p + 1))


_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER = None


class _OneBlasThread:
    """Context: numpy's BLAS on one thread while any generation runs (reference-counted, so concurrent
    generations from a thread pool do not restore each other's setting halfway)."""

    def __enter__(self):
        global _BLAS_USERS, _BLAS_LIMITER
        with _BLAS_LOCK:
            if _BLAS_USERS == 0:
                try:
                    from threadpoolctl import threadpool_limits
                except ImportError:  # pragma: no cover - a declared dependency
                    _BLAS_LIMITER = None
                else:
                    _BLAS_LIMITER = threadpool_limits(1, user_api="blas")
            _BLAS_USERS += 1
        return self

    def __exit__(self, *exc):
        global _BLAS_USERS, _BLAS_LIMITER
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0 and _BLAS_LIMITER is not None:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


def blas_one_thread():
    """Context: numpy's BLAS on one thread while it runs (restored when the last user leaves)."""
    return _OneBlasThread()
