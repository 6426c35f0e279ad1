"""The profile encoder: a small causal transformer over each shopper's interactions, trained on
next-item prediction; its sequence representation, fused with standardised behaviour features,
is the shopper's profile vector.

- ``train_encoder(con, run_id, ...)``   (train.py) trains and stores the checkpoint for a run;
- ``compute_profiles(con, run_id, ...)`` (runtime.py) writes ``profiles``;
- ``load_encoder(con, run_id)``          (runtime.py) gives a ``ProfileEncoder`` for live scoring.
"""

from core.encoder.runtime import (
    EncoderNotFound,
    ProfileEncoder,
    compute_profiles,
    fuse,
    load_encoder,
)
from core.encoder.train import CHECKPOINT_NAME, DEFAULT_PARAMS, train_encoder

__all__ = [
    "CHECKPOINT_NAME",
    "DEFAULT_PARAMS",
    "EncoderNotFound",
    "ProfileEncoder",
    "compute_profiles",
    "fuse",
    "load_encoder",
    "train_encoder",
]
