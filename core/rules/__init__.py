"""Association rules: frequent itemsets and single-consequent rules over purchase baskets."""

from core.rules.mining import (
    Baskets,
    Itemsets,
    TooManyItemsets,
    mine_itemsets,
    mine_rules,
    rule_metrics,
    to_baskets,
)

__all__ = ["Baskets", "Itemsets", "TooManyItemsets", "mine_itemsets", "mine_rules",
           "rule_metrics", "to_baskets"]
