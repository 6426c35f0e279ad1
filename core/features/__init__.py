"""Behaviour features per shopper (RFM, habits, price sensitivity, shares, diversity)."""

from core.features.compute import FEATURE_COLUMNS, compute_features, feature_matrix

__all__ = ["FEATURE_COLUMNS", "compute_features", "feature_matrix"]
