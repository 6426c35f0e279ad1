"""Read-side queries the dashboard (and `segstudio export`) call: overview, segment map and
selections, segment detail, compare, shopper profiles, rules, model quality, saved segments and
spreadsheet-safe exports. Nothing here trains a model or imports streamlit."""

from core.explore.export import (COLUMN_GROUPS, DEFAULT_COLUMNS, ExportError, atomic_output,
                                 check_output, export_frame, neutralise_cell, neutralise_frame,
                                 saved_export, segment_export, to_csv_bytes, to_parquet_bytes,
                                 write_export)
from core.explore.fmt import (currency_symbol, fmt_days, fmt_int, fmt_lift, fmt_money, fmt_num,
                              fmt_pct, fmt_when)
from core.explore.queries import (DIMENSION_LABELS, FEATURE_LABELS, MONEY_FEATURES,
                                  SHARE_FEATURES, UNASSIGNED_COLOR, compare_groups, data_health,
                                  evaluations, feature_columns, feature_comparison,
                                  feature_distribution, find_users, group_summary, group_traits,
                                  has_rows, k_scan, latest_build, map_points, resolve_group, rule_graph,
                                  rules_table, run_history, segment_colors, segment_detail,
                                  segment_names, segment_traits, segment_user_ids, segments,
                                  selection_user_ids, shop_totals, table_exists, top_items,
                                  training_curve, user_preferences, user_profile, user_summaries,
                                  user_timeline, users_in_region)
from core.explore.saved import (SavedSegmentError, delete_saved, find_saved, get_saved,
                                list_saved, save_segment, saved_members)
from core.explore.similar import ProfileIndex

__all__ = [n for n in dir() if not n.startswith("_")]
