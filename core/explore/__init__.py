"""Read-side queries the dashboard (and `segstudio export`) call: overview, segment map and
selections, segment detail, compare, shopper profiles, rules, model quality, saved segments and
spreadsheet-safe exports. Nothing here trains a model or imports streamlit.

Queries that read segments take ``lens`` ("taste" or "lifecycle") and ``scope`` (None, or
``(lens, segment_id)``: only the shoppers in that segment of the other lens); see
``core.explore.base``."""

from core.explore.base import (CONTENT_DIMENSIONS, DEFAULT_LENS, DIMENSION_LABELS, FEATURE_LABELS,
                               LENS_LABELS, LENSES, LOG_FEATURES, MONEY_FEATURES, PRICE_BAND_ORDER,
                               SHARE_FEATURES, UNASSIGNED_COLOR, check_scope, feature_columns,
                               has_rows, in_scope, lens_tables, members_sql, other_lens,
                               restrict_events,
                               scope_filter, scope_ids, table_exists)
from core.explore.export import (COLUMN_GROUPS, DEFAULT_COLUMNS, RECOMMENDED, ExportError,
                                 add_recommendations, atomic_output, check_output,
                                 export_frame, neutralise_cell, neutralise_frame, saved_export,
                                 segment_export, to_csv_bytes, to_parquet_bytes, write_export)
from core.explore.fmt import (currency_symbol, fmt_clock, fmt_days, fmt_int, fmt_lift, fmt_money,
                              fmt_money_short,
                              fmt_num, fmt_pct, fmt_when)
from core.explore.groups import (busiest_hours, compare_groups, feature_comparison, group_summary,
                                 group_traits, order_values, resolve_group, segment_user_ids)
from core.explore.mapview import (MAP_GROUPINGS, has_prediction, map_points, selection_user_ids,
                                  theme_colors,
                                  users_in_region)
from core.explore.mapscale import find_on_map, map_density, map_labels
from core.explore.model import (evaluations, k_scan, quality_table, run_history, sampling_notes,
                                training_curve)
from core.explore.overview import (data_health, dimensions, has_prices, latest_build, lens_cross,
                                   lens_quality, lens_scope_options, segment_colors, segment_names,
                                   segments, shop_totals)
from core.explore.rules import SPECIFIC_RATIO, rule_graph, rules_table
from core.trends import trends  # noqa: F401 - cached by the dashboard like every query
from core.explore.saved import (SavedSegmentError, delete_saved, find_saved, get_saved,
                                list_saved, save_segment, saved_members)
from core.explore.segment import (feature_distribution, segment_detail, segment_traits, top_items,
                                  user_summaries)
from core.explore.shoppers import (find_users, user_preferences, user_profile, user_segments,
                                   user_timeline)
from core.explore.similar import ProfileIndex

__all__ = [n for n in dir() if not n.startswith("_")]
