"""Which recommender to use for each segment, chosen by a bandit in a chronological replay
(``replay``)."""

from core.bandit.replay import ReplayResult, replay, thompson_replay

__all__ = ["ReplayResult", "replay", "thompson_replay"]
