"""Association rules: frequent itemsets and single-consequent rules over purchase baskets.

``mine_rules`` works on any baskets (core.rules.mining: algorithm and conventions);
``build_rules`` / ``baskets_from_store`` / ``read_rules`` work on the store
(core.rules.build: basket definition, automatic thresholds, segment ratios).
"""

from core.rules.build import (
    DEFAULT_MIN_CONFIDENCE,
    NoBuildError,
    auto_rules,
    baskets_from_store,
    build_rules,
    count_itemsets,
    read_rules,
    segment_ratios,
    with_titles,
)
from core.rules.mining import (
    Baskets,
    Itemsets,
    TooManyItemsets,
    mine_itemsets,
    mine_rules,
    rule_metrics,
    to_baskets,
)

__all__ = ["DEFAULT_MIN_CONFIDENCE", "Baskets", "Itemsets", "NoBuildError", "TooManyItemsets",
           "auto_rules", "baskets_from_store", "build_rules", "count_itemsets", "mine_itemsets",
           "mine_rules", "read_rules", "rule_metrics", "segment_ratios", "to_baskets",
           "with_titles"]
