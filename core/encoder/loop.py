"""The profile encoder's training loop, in one process or as one rank of a DDP group.

``fit(job)`` is what ``train_encoder`` has always run: seeded AdamW over shuffled windows, full or
sampled softmax, validation NDCG@10 after every epoch, early stopping, the best epoch's weights
kept. With ``world > 1`` (Ray Train's TorchTrainer, ``core/engine/ray_train.py``) every rank
holds all the windows and draws the same shuffled order; each global step takes the same
``batch_size`` windows as the single process would, and rank r trains on every ``world``-th of
them. Each rank's loss is its targets' summed cross-entropy times ``world`` over the step's
total targets, so DDP's gradient average is exactly the single-process batch gradient (up to
float summation order). Sampled negatives come from the same seeded generator on every rank,
as in one process. What differs is dropout: each rank draws masks for its own rows, so DDP
weights are not bitwise the single-process weights (the tests state the tolerance).
Validation runs on every rank (the same weights give the same figures, so every rank makes the
same early-stopping decision without communication).
"""

from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np


def fit(job, *, rank: int = 0, world: int = 1, wrap: Callable | None = None,
        device: str | None = None, threads: int | None = None,
        on_epoch: Callable[[dict], None] | None = None):
    """Train on ``job`` (a ``core.engine.FitJob``); returns a ``core.engine.FitResult``."""
    import torch
    from torch.nn import functional as F

    from core.encoder.model import SeqEncoder
    from core.encoder.train import _autocast, torch_settings
    from core.engine import FitResult

    p, seed, dev = job.params, int(job.seed), device or job.device
    tr_items, tr_types, tr_gaps, tr_targets = job.train
    val = job.val
    has_val = len(val[0]) > 0
    L = int(p["max_len"])
    curve: list[dict] = []
    with torch_settings(dev, seed, threads if threads is not None else p["threads"]):
        rng = np.random.default_rng(seed)
        core_model = SeqEncoder(job.n_items, job.text.shape[1], d=p["d"], n_layers=p["n_layers"],
                                n_heads=p["n_heads"], max_len=L, dropout=p["dropout"]).to(dev)
        with torch.no_grad():
            core_model.item_text[1:] = torch.as_tensor(job.text, device=dev)
        model = wrap(core_model) if wrap is not None else core_model  # DDP forwards, syncs
        opt = torch.optim.AdamW(core_model.parameters(), lr=p["lr"],
                                weight_decay=p["weight_decay"])
        X = [torch.as_tensor(a, device=dev) for a in (tr_items, tr_types, tr_gaps, tr_targets)]
        best = (-1.0, 0, None)
        bad = 0
        bs = int(p["batch_size"])
        n_neg = _n_negatives(p["negatives"], job.n_items)
        gen = torch.Generator(device=dev)
        gen.manual_seed(seed)
        t_train = time.perf_counter()
        lengths = (np.asarray(tr_types) > 0).sum(axis=1)
        # On a GPU the padding costs little beside the step's launches, and that path (never
        # run here: no GPU) is left as it was.
        pack_rows = not str(dev).startswith("cuda")
        head_bf16 = bf16_head(dev, job.n_items)
        for epoch in range(1, int(job.max_epochs) + 1):
            t_ep = time.perf_counter()
            model.train()
            order = torch.as_tensor(rng.permutation(len(tr_items)), device=dev)
            total, count = 0.0, 0
            for i in range(0, len(order), bs):
                idx = order[i:i + bs]
                if world > 1:
                    if len(idx) < world:  # every rank must step together: drop a tiny tail
                        break
                    k_all = int((X[3][idx] >= 0).sum())
                    idx = idx[rank::world]
                if pack_rows:
                    (items, types, gaps, tg), packed = pack(X, idx, lengths, L, dev)
                else:
                    (items, types, gaps, tg), packed = (x[idx] for x in X), None
                with _autocast(dev):
                    E = core_model.item_matrix()
                    h = model(items, types, gaps, E, packed=packed)
                    m = tg >= 0
                    k = int(m.sum())
                    # the step's mean over its targets; with DDP, this rank's sum times world
                    # over the step's total, so the ranks' average is the batch mean
                    scale = world / max(k_all, 1) if world > 1 else 1.0 / max(k, 1)
                    if n_neg:
                        logits, labels = _sampled_logits(core_model, h[m], E, tg[m], n_neg, gen)
                    else:
                        loss = softmax_xent(h[m], E[1:], core_model.item_bias, tg[m], scale,
                                            bf16=head_bf16)
                if n_neg and world > 1:
                    loss = F.cross_entropy(logits.float(), labels, reduction="sum") * scale
                elif n_neg:
                    loss = F.cross_entropy(logits.float(), labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step_mean = float(loss.detach()) * (k_all / world / max(k, 1) if world > 1 else 1)
                total += step_mean * k
                count += k
            if has_val:
                v_ndcg, v_recall = _evaluate(core_model, val, dev)
            else:
                v_ndcg, v_recall = float("nan"), float("nan")
            row = {"epoch": epoch, "train_loss": total / max(count, 1),
                   "val_ndcg10": v_ndcg, "val_recall10": v_recall,
                   "seconds": time.perf_counter() - t_ep}
            curve.append(row)
            if on_epoch is not None:
                on_epoch(row)
            score = v_ndcg if has_val else -float(total / max(count, 1))
            if best[2] is None or score > best[0] + abs(best[0]) * p["min_improvement"]:
                bad = 0
            else:
                bad += 1
            if best[2] is None or score > best[0]:  # keep the best weights seen
                best = (score, epoch, {k_: v.detach().to("cpu").clone()
                                       for k_, v in core_model.state_dict().items()})
            if has_val and bad >= p["patience"]:
                break
            if p["max_seconds"] and time.perf_counter() - t_train > p["max_seconds"]:
                break
    return FitResult(state=best[2], curve=curve, best_epoch=best[1],
                     train_seconds=time.perf_counter() - t_train, workers=world)


def pack(X, idx, lengths: np.ndarray, L: int, device):
    """The batch ``idx`` of the left-padded windows ``X`` (items, types, gaps, targets) with
    short windows sharing rows: first-fit by decreasing length, each window's interactions
    contiguous and in order. Returns the packed arrays and (positions, window ids) for
    ``SeqEncoder.encode``: the model sees every window as in its own row (its columns' position
    embeddings, attention within the window), the batch and its targets are the same, and the
    rows to compute are fewer (Online Retail: a third of the positions are padding; 64 windows
    a batch fit in ~40 rows)."""
    import torch

    ix = idx.cpu().numpy()
    k = lengths[ix]
    free: list[int] = []                     # room left in each packed row
    row = np.zeros(len(ix), np.int64)
    col = np.zeros(len(ix), np.int64)
    for w in np.argsort(-k, kind="stable"):
        r = next((j for j, f in enumerate(free) if f >= k[w]), len(free))
        if r == len(free):
            free.append(L)
        row[w], col[w] = r, L - free[r]
        free[r] -= k[w]
    n = int(k.sum())
    win = np.repeat(np.arange(len(ix)), k)
    step = np.arange(n) - np.repeat(np.cumsum(k) - k, k)  # 0.. within each window
    src_c = L - k[win] + step                               # the column in its own row
    dst_r, dst_c = row[win], col[win] + step
    R = len(free)
    src = (torch.as_tensor(ix[win], device=device), torch.as_tensor(src_c, device=device))
    dst = (torch.as_tensor(dst_r, device=device), torch.as_tensor(dst_c, device=device))
    out = []
    for x, fill in zip(X, (0, 0, 0, -100)):
        p = torch.full((R, L), fill, dtype=x.dtype, device=device)
        p[dst] = x[src]
        out.append(p)
    pos = torch.zeros((R, L), dtype=torch.long, device=device)
    pos[dst] = src[1]
    wid = torch.zeros((R, L), dtype=torch.long, device=device)
    wid[dst] = torch.as_tensor(win + 1, device=device)
    return out, (pos, wid)


# Full softmax (cross-entropy over the whole catalogue) up to this many items. On Online Retail
# (3,927 items) it trained as fast as 1,024 sampled negatives on the CPU and scored better on
# every held-out table, same seed and split (NDCG@10, encoder alone): leave-one-out 0.165 vs
# 0.146 (new items) and 0.151 vs 0.142 (repeats); last basket 0.051 vs 0.048 and 0.133 vs 0.123.
FULL_SOFTMAX_UP_TO = 8192


def _n_negatives(setting, n_items: int) -> int:
    """0 = full softmax. 'auto': full softmax up to ``FULL_SOFTMAX_UP_TO`` items, else 1,024
    sampled negatives."""
    if setting in (None, 0, "full"):
        return 0
    if setting == "auto":
        return 0 if n_items <= FULL_SOFTMAX_UP_TO else 1024
    k = int(setting)
    return 0 if k >= n_items else k


# The full softmax's three products over the catalogue in bfloat16, on a CPU that computes it
# natively (AMX or AVX512-BF16), from this many items (below, the head is small and stays float32,
# so small shops give the same figures on every CPU). Accumulated in float32; the softmax and the
# loss stay float32, as under the GPU's bf16 autocast. Online Retail (3,927 items), its two
# encoders side by side on 2 cores, 3 epochs, seeds 42 and 7: 23.5-24.1 -> 21.9-22.6 s, the
# losses equal to 4 digits, validation NDCG@10 0.15311 -> 0.15294 and 0.14740 -> 0.14728.
HEAD_BF16_FROM = 2_048
# The products' rows are rounded up to a multiple of this: oneDNN builds a kernel for each new
# shape, and every step has its own number of targets (unrounded, the epoch was slower than
# float32's: 7.3 against 7.1 s; 256: 5.8-6.1 against 6.5 s).
HEAD_BF16_ROWS = 256
# In bfloat16 the head works through its rows this many at a time: each block's logits, softmax
# and gradient (128 x 3,927 float32 on Online Retail, 2 MB) stay in the core's cache instead of
# one (targets x items) float32 array making ten passes through memory. The products are the
# same (the block's rows of the same padded bfloat16 arrays), so the hidden states' and items'
# gradients are bit for bit the unblocked ones; the loss and the bias gradient are summed block
# by block (within 3e-7). A step's head, 1,960 targets x 3,927 items on one thread: 30-50 ->
# 24-26 ms.
HEAD_BF16_BLOCK = 128


def bf16_head(device, n_items: int) -> bool:
    from core.config import cpu_has_bf16

    return str(device) == "cpu" and n_items >= HEAD_BF16_FROM and cpu_has_bf16()


def softmax_xent(h, E, bias, targets, scale: float, bf16: bool = False):
    """``scale`` times the summed cross-entropy of next-item logits ``h @ E.T + bias`` (full
    softmax over the catalogue) against ``targets``: the same value and gradients as
    ``F.cross_entropy(h @ E.T + bias, targets, reduction="sum") * scale``, in one (n, items)
    buffer that holds the logits, then the softmax, then the gradient. The unfused way makes and
    reads five such arrays a step (logits, biased logits, log-softmax, its gradient, the
    one-hot's); on Online Retail (2,067 targets x 3,927 items a step, one CPU thread) the head's
    forward and backward took 82 ms, fused 42 ms, with the same loss and gradients. ``bf16``
    (float32 inputs on a CPU): the products in bfloat16 (``HEAD_BF16_FROM``)."""
    return _softmax_xent_class().apply(h, E, bias, targets, float(scale), bool(bf16))


def _blocked_bf16_forward(ctx, h, E, bias, targets, scale: float):
    """The bfloat16 head's forward pass, ``HEAD_BF16_BLOCK`` rows at a time: each block's
    logits (one bfloat16 product), softmax and loss in float32, then its gradient (softmax minus
    the target's one-hot, times ``scale``) into the padded bfloat16 array the backward pass's
    two products read, and its column sums into the bias gradient."""
    import torch

    k, n = len(h), E.shape[0]
    rows = -(-k // HEAD_BF16_ROWS) * HEAD_BF16_ROWS
    hb, Eb, bb = _padded_bf16(h, rows), E.to(torch.bfloat16), bias.to(torch.bfloat16)
    Pb = torch.empty(rows, n, dtype=torch.bfloat16, device=h.device)
    Pb[k:].zero_()
    gb = torch.zeros(n, dtype=torch.float32, device=h.device)
    loss = torch.zeros((), dtype=torch.float32, device=h.device)
    B = HEAD_BF16_BLOCK
    for s in range(0, k, B):
        e = min(s + B, k)
        z = torch.addmm(bb, hb[s:s + B], Eb.T)[:e - s].float()   # always B rows: one kernel
        t = targets[s:e]
        top = z.amax(1, keepdim=True)
        picked = z.gather(1, t[:, None])
        z.sub_(top).exp_()
        total = z.sum(1, keepdim=True)
        loss += (total.log() + top - picked).sum()
        z.div_(total)
        z[torch.arange(e - s, device=z.device), t] -= 1.0
        z.mul_(scale)
        gb += z.sum(0)
        Pb[s:e] = z
    ctx.bf16 = (Pb, hb, Eb, gb, k, (h.dtype, E.dtype))
    return loss * scale


def _padded_bf16(x, rows: int):
    """``x`` in bfloat16, with zero rows below it up to ``rows``."""
    import torch

    out = torch.zeros(rows, x.shape[1], dtype=torch.bfloat16, device=x.device)
    out[:len(x)] = x
    return out


@functools.cache
def _softmax_xent_class():
    """The autograd Function, built on first use (importing this module needs no torch)."""
    import torch

    class SoftmaxXent(torch.autograd.Function):
        @staticmethod
        def forward(ctx, h, E, bias, targets, scale, bf16):
            if bf16:
                return _blocked_bf16_forward(ctx, h, E, bias, targets, scale)
            # the bias added by the matrix product itself (no pass of its own)
            z = torch.addmm(bias.to(h.dtype), h, E.T).float()  # fp32 softmax under autocast
            ctx.bf16 = None
            top = z.amax(1, keepdim=True)
            picked = z.gather(1, targets[:, None])
            z.sub_(top).exp_()
            total = z.sum(1, keepdim=True)
            loss = (total.log() + top - picked).sum() * scale
            z.div_(total)                             # the softmax, kept for the gradient
            ctx.scale = scale
            ctx.save_for_backward(z, h, E, targets)
            return loss

        @staticmethod
        def backward(ctx, grad):
            if ctx.bf16 is not None:
                Pb, hb, Eb, gb, k, dtypes = ctx.bf16
                gh = (Pb @ Eb)[:k].to(dtypes[0])
                gE = (Pb.T @ hb).to(dtypes[1])
                gb = gb.to(dtypes[1])
                if float(grad) != 1.0:  # the softmax was scaled in the forward pass already
                    gh, gE, gb = gh * grad, gE * grad, gb * grad
                return gh, gE, gb, None, None, None
            P, h, E, targets = ctx.saved_tensors
            P[torch.arange(len(targets), device=P.device), targets] -= 1.0
            P.mul_(grad * ctx.scale)
            gh = (P @ E.to(P.dtype)).to(h.dtype)
            gE = (P.T @ h.to(P.dtype)).to(E.dtype)
            return gh, gE, P.sum(0).to(E.dtype), None, None, None

    return SoftmaxXent


def _sampled_logits(model, h, E, targets, n_neg: int, gen):
    """Sampled softmax: the target's logit against n_neg negatives shared by the batch, drawn
    uniformly; negatives' logits get + log(n_items / n_neg) so the loss estimates the full
    softmax's, and a negative that is the row's own target is masked."""
    import torch

    n_items = E.shape[0] - 1
    neg = torch.randint(0, n_items, (n_neg,), device=h.device, generator=gen)
    pos = (h * E[targets + 1]).sum(-1) + model.item_bias[targets]
    negl = h @ E[neg + 1].T + model.item_bias[neg] + float(np.log(n_items / n_neg))
    negl = negl.masked_fill(neg[None, :] == targets[:, None], float("-inf"))
    logits = torch.cat([pos[:, None], negl], dim=1)
    return logits, torch.zeros(len(targets), dtype=torch.long, device=h.device)


# On a CPU the validation scores its targets against the catalogue this many at a time, so the
# scores stay in the processor's cache (Online Retail: ~5,500 targets x 3,927 items a batch of
# 512 windows, 86 MB at once before); the same ranks.
EVAL_SCORE_ROWS = 256


def _evaluate(model, val, device, batch=512):
    """(NDCG@10, recall@10) of the validation targets. On a CPU the windows are packed as in
    training (``pack``): the same targets and scores, with the padding left out (Online Retail:
    4,173 windows, a third padding; 1.07 -> 0.93 s a pass)."""
    import torch

    from core.encoder.train import _autocast, ndcg_recall_at_10

    _, items, types, gaps, targets = val
    packed_rows = not str(device).startswith("cuda")
    X = [torch.as_tensor(a, device=device) for a in (items, types, gaps, targets)]
    lengths = (np.asarray(types) > 0).sum(axis=1)
    L = X[0].shape[1]
    model.eval()
    ranks = []
    with torch.inference_mode(), _autocast(device):
        E = model.item_matrix()
        for i in range(0, len(items), batch):
            if packed_rows:
                idx = torch.arange(i, min(i + batch, len(items)), device=device)
                (it, ty, ga, tg), packed = pack(X, idx, lengths, L, device)
            else:
                (it, ty, ga, tg), packed = (x[i:i + batch] for x in X), None
            h = model(it, ty, ga, E, packed=packed)
            m = tg >= 0
            hm, t = h[m], tg[m]
            step = EVAL_SCORE_ROWS if packed_rows else max(1, len(t))
            for s in range(0, len(t), step):
                sc = model.scores(hm[s:s + step], E).float()
                ts = sc.gather(1, t[s:s + step, None])
                ranks.append(((sc >= ts).sum(1) - 1).cpu().numpy())
    ranks = np.concatenate(ranks) if ranks else np.zeros(0, dtype=np.int64)
    return ndcg_recall_at_10(ranks)
