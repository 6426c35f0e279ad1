"""The profile encoder network: a small causal transformer over a shopper's interactions.

Each interaction's input is the sum of
  * the item's representation: a learned item-id embedding plus a linear projection of the
    item's text embedding (so rare and brand-new items still mean something; id embeddings start
    at zero, the text carries an item until its id has been seen enough to learn a correction),
  * an event-type embedding (view, click, cart, purchase, favorite, review, return),
  * a time-gap embedding (log2 of the seconds since the shopper's previous interaction, bucketed),
  * a position embedding.
Pre-norm transformer blocks with causal self-attention follow. Next-item scores are the dot
product of a position's hidden state with every item's representation (tied with the input side)
plus a learned per-item bias.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from core.store.schema import EVENT_TYPES

# type code 0 = padding; 1.. = EVENT_TYPES in schema order
TYPE_CODES = {t: i + 1 for i, t in enumerate(EVENT_TYPES)}
N_TYPES = len(EVENT_TYPES) + 1
# gap bucket 0 = padding, 1 = first interaction / unknown time, 2 + floor(log2(1 + seconds)) capped
GAP_MAX_LOG2 = 30
N_GAPS = GAP_MAX_LOG2 + 3


def gap_buckets(gap_seconds: np.ndarray) -> np.ndarray:
    """Bucket ids for gaps in seconds (NaN = first interaction or unknown time -> 1)."""
    g = np.asarray(gap_seconds, dtype=np.float64)
    out = np.ones(g.shape, dtype=np.int64)
    ok = np.isfinite(g)
    out[ok] = 2 + np.minimum(np.floor(np.log2(1.0 + np.maximum(g[ok], 0.0))), GAP_MAX_LOG2)
    return out


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout. On the CPU the mask is drawn as ``uniform >= p``: torch's own dropout
    draws it with ``bernoulli_``, twice as slow there (Online Retail's encoder: 1.6 against
    0.8 ms a call, 9% of a training step). The same distribution, another random stream; on a GPU
    torch's fused kernel is the faster and is used."""
    if not training or p == 0.0:
        return x
    if x.is_cuda:
        return F.dropout(x, p, True)
    return x * (torch.rand_like(x) >= p).to(x.dtype).mul_(1.0 / (1.0 - p))


class Dropout(nn.Module):
    """``nn.Dropout`` with the mask drawn as in ``dropout``."""

    def __init__(self, p: float):
        super().__init__()
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class Block(nn.Module):
    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.drop = Dropout(dropout)
        self.p = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor, last: bool = False) -> torch.Tensor:
        """``last``: only the last position's output (B, 1, d); every position still serves as
        a key and value, so it equals the last row of the full output."""
        B, L, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, h, d // h).permute(2, 0, 3, 1, 4)
        if last:
            q, mask, x, L = q[:, :, -1:], mask[:, :, -1:], x[:, -1:], 1
        if self.training and self.p > 0 and not x.is_cuda:
            # what scaled_dot_product_attention computes on the CPU with dropout (its math
            # path), with the faster dropout above
            att = (q @ k.transpose(-2, -1)).mul_((d // h) ** -0.5)
            a = dropout(att.masked_fill_(~mask, float("-inf")).softmax(-1), self.p, True) @ v
        else:
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                               dropout_p=self.p if self.training else 0.0)
        x = x + self.drop(self.out(a.transpose(1, 2).reshape(B, L, d)))
        return x + self.drop(self.ff(self.ln2(x)))


class SeqEncoder(nn.Module):
    def __init__(self, n_items: int, text_dim: int, d: int = 64, n_layers: int = 2,
                 n_heads: int = 2, max_len: int = 50, dropout: float = 0.2):
        super().__init__()
        self.n_items, self.d, self.max_len = n_items, d, max_len
        # index 0 = padding; item vocabulary index i is row i + 1
        self.item_id = nn.Embedding(n_items + 1, d, padding_idx=0)
        nn.init.zeros_(self.item_id.weight)
        self.register_buffer("item_text", torch.zeros(n_items + 1, text_dim))
        self.text_proj = nn.Linear(text_dim, d, bias=False)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.type_emb = nn.Embedding(N_TYPES, d, padding_idx=0)
        self.gap_emb = nn.Embedding(N_GAPS, d, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, d)
        for emb in (self.type_emb, self.gap_emb, self.pos_emb):
            nn.init.normal_(emb.weight, std=0.02)
        self.drop = Dropout(dropout)
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers))
        self.ln = nn.LayerNorm(d)

    def item_matrix(self) -> torch.Tensor:
        """(n_items + 1, d) item representations; row 0 (padding) is zero."""
        E = self.item_id.weight + self.text_proj(self.item_text)
        return torch.cat([torch.zeros_like(E[:1]), E[1:]], dim=0)

    def text_item(self, text_vec: torch.Tensor) -> torch.Tensor:
        """The representation of an item outside the vocabulary, from its text alone."""
        return self.text_proj(text_vec)

    def encode(self, item_vecs: torch.Tensor, types: torch.Tensor, gaps: torch.Tensor,
               last: bool = False, packed: tuple | None = None) -> torch.Tensor:
        """Hidden states (B, L, d); with ``last``, the last position's only (B, 1, d): the
        last block computes nothing else (a third of the work where only it is read).
        Sequences are left-padded (type 0 marks padding). ``packed``: (positions, windows),
        both (B, L): rows that hold several windows side by side (``core.encoder.loop.pack``),
        each position embedding read at its column in the window's own left-padded row, and
        attention kept within each window (id 0: padding); every interaction's output is then
        the one it has in its own row."""
        B, L, _ = item_vecs.shape
        valid = types > 0
        if packed is None:
            pos = self.pos_emb(torch.arange(L, device=item_vecs.device))[None]
        else:
            pos = self.pos_emb(packed[0])
        x = item_vecs + self.type_emb(types) + self.gap_emb(gaps) + pos
        x = self.drop(x)
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
        # attend to earlier valid positions; every position may attend to itself (so padded rows
        # never see an all-masked row, which would give NaN)
        eye = torch.eye(L, dtype=torch.bool, device=x.device)
        keys = valid[:, None, :] if packed is None else \
            (packed[1][:, None, :] == packed[1][:, :, None]) & valid[:, None, :]
        mask = (causal[None] & keys) | eye[None]
        mask = mask[:, None]  # (B, 1, L, L) broadcast over heads
        for i, blk in enumerate(self.blocks):
            x = blk(x, mask, last=last and i == len(self.blocks) - 1)
        return self.ln(x)

    def forward(self, items: torch.Tensor, types: torch.Tensor, gaps: torch.Tensor,
                E: torch.Tensor | None = None, last: bool = False,
                packed: tuple | None = None) -> torch.Tensor:
        if E is None:
            E = self.item_matrix()
        return self.encode(F.embedding(items, E), types, gaps, last=last, packed=packed)

    def scores(self, h: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
        """Next-item logits over the vocabulary for hidden states h (..., d)."""
        return h @ E[1:].T + self.item_bias

    @staticmethod
    def pool(h: torch.Tensor, types: torch.Tensor, how: str) -> torch.Tensor:
        """One vector per sequence: the last position's state or the mean over valid positions."""
        if how == "last":
            return h[:, -1]
        valid = (types > 0).to(h.dtype)[..., None]
        return (h * valid).sum(1) / valid.sum(1).clamp_min(1.0)


def param_count(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))

