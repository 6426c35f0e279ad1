"""Recommenders and previews (see ``recommenders`` for the models and ``previews`` for the
dashboard's what-if functions)."""

from core.recommend.data import DEFAULT_ACTIVE_DAYS, ShopData
from core.recommend.previews import (
    PreviewError,
    get_engine,
    parse_price_cap,
    preview_history,
    preview_persona,
    preview_segment,
    preview_user,
)
from core.recommend.recommenders import (
    DEFAULT_WEIGHTS,
    RECOMMENDERS,
    EncoderRecommender,
    HybridRecommender,
    ItemKNNRecommender,
    PopularityRecommender,
    Recommendation,
    Recommender,
    RepeatRecommender,
    SegmentPopularityRecommender,
    fit_recommenders,
)

__all__ = [
    "DEFAULT_ACTIVE_DAYS", "DEFAULT_WEIGHTS", "RECOMMENDERS", "EncoderRecommender",
    "HybridRecommender", "ItemKNNRecommender", "PopularityRecommender", "Recommendation",
    "Recommender", "RepeatRecommender", "SegmentPopularityRecommender", "ShopData",
    "fit_recommenders", "PreviewError", "get_engine", "parse_price_cap", "preview_history",
    "preview_persona", "preview_segment", "preview_user",
]
