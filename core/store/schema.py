"""The store's base schema (versioned).

Base tables hold what was ingested. Build outputs (features, profiles, segments, maps, rules,
evaluations...) are run-scoped tables created by their own pipeline stage with
``CREATE TABLE IF NOT EXISTS`` and always carry ``run_id`` as their first column.
"""

from __future__ import annotations

import duckdb

SCHEMA_VERSION = 1

EVENT_TYPES = ("view", "click", "cart", "purchase", "favorite", "review", "return")

BASE_DDL = [
    """
    CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )
    """,
    # One row per shopper. attributes is a JSON object (country, age_band, ...).
    """
    CREATE TABLE IF NOT EXISTS users (
        user_id VARCHAR NOT NULL,
        attributes JSON,
        first_seen TIMESTAMP,
        ingest_id INTEGER
    )
    """,
    # category_path uses ' > ' between levels, e.g. 'Home > Kitchen > Mugs'.
    """
    CREATE TABLE IF NOT EXISTS items (
        item_id VARCHAR NOT NULL,
        title VARCHAR,
        description VARCHAR,
        category_path VARCHAR,
        brand VARCHAR,
        price DOUBLE,
        ingest_id INTEGER
    )
    """,
    # user_id may be NULL (anonymous rows count for items and baskets, not for profiles).
    # quantity keeps the source's sign (returns are negative in Online Retail).
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id BIGINT NOT NULL,
        user_id VARCHAR,
        item_id VARCHAR NOT NULL,
        event_type VARCHAR NOT NULL CHECK (event_type IN
            ('view', 'click', 'cart', 'purchase', 'favorite', 'review', 'return')),
        ts TIMESTAMP,
        quantity DOUBLE,
        unit_price DOUBLE,
        basket_id VARCHAR,
        session_id VARCHAR,
        ingest_id INTEGER,
        row_hash UBIGINT
    )
    """,
    # Rows that could not be loaded, with the raw row (JSON of the source columns) and why.
    """
    CREATE TABLE IF NOT EXISTS quarantine (
        ingest_id INTEGER,
        source_file VARCHAR,
        row_number BIGINT,
        column_name VARCHAR,
        reason VARCHAR,
        raw JSON,
        row_hash UBIGINT
    )
    """,
    # One row per ingest: rows_read = rows_loaded + rows_quarantined + rows_duplicate.
    """
    CREATE TABLE IF NOT EXISTS ingests (
        ingest_id INTEGER NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        source_file VARCHAR,
        format VARCHAR,
        fingerprint VARCHAR,
        rows_read BIGINT,
        rows_loaded BIGINT,
        rows_quarantined BIGINT,
        rows_duplicate BIGINT,
        details JSON
    )
    """,
    # Builds and other recorded computations. Only status='complete' runs are ever served.
    """
    CREATE TABLE IF NOT EXISTS runs (
        run_id INTEGER NOT NULL,
        kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        params JSON,
        data_fingerprint VARCHAR,
        metrics JSON
    )
    """,
    # Planted shopper types of the generated demo shop (ground truth for checks).
    """
    CREATE TABLE IF NOT EXISTS demo_truth (
        user_id VARCHAR NOT NULL,
        shopper_type VARCHAR NOT NULL
    )
    """,
    # Saved segments (and other records people write while they work) live in the records file
    # beside the store, so saving one never copies the store or waits for a build:
    # see core/store/records.py (stores made earlier keep old copies here, read until migrated).

    # ------------------------------------------------------------------ build outputs
    # Every table below is run-scoped: run_id first. Written by `segstudio build`.
    # Behaviour features, one row per user with a profile (user_id NOT NULL).
    """
    CREATE TABLE IF NOT EXISTS user_features (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        recency_days DOUBLE,          -- days from last purchase to the store's last event
        frequency DOUBLE,             -- number of orders (distinct baskets with a purchase)
        monetary DOUBLE,              -- net revenue (purchases minus returns)
        avg_order_value DOUBLE,
        tenure_days DOUBLE,           -- first to last event
        return_rate DOUBLE,           -- returned units / purchased units
        views_per_purchase DOUBLE,    -- NULL where the data has no views
        basket_size DOUBLE,           -- mean distinct items per order
        evening_share DOUBLE,         -- share of events 18:00-23:59
        weekend_share DOUBLE,
        mean_hour DOUBLE,
        price_sensitivity DOUBLE,     -- mean of log(price paid / category median price); <0 = cheaper
        diversity DOUBLE,             -- entropy of category shares (bits)
        n_events BIGINT,
        n_items BIGINT,
        holiday_share DOUBLE,         -- share of purchase lines in November-December
        reviews DOUBLE,               -- review events (NULL in shops without reviews)
        rating_vs_shop DOUBLE,        -- mean rating given minus the shop's mean (NULL: none given)
        low_rating_share DOUBLE       -- share of ratings in the bottom quarter of the shop's scale
    )
    """,
    # Preference shares per user: dimension in ('category','brand','price_band','hour','weekday').
    """
    CREATE TABLE IF NOT EXISTS user_shares (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        dimension VARCHAR NOT NULL,
        value VARCHAR NOT NULL,
        share DOUBLE NOT NULL
    )
    """,
    # Item text embeddings cache, shared across runs: keyed by model and hash of the item text.
    """
    CREATE TABLE IF NOT EXISTS item_embeddings (
        model VARCHAR NOT NULL,
        text_hash VARCHAR NOT NULL,
        vector FLOAT[] NOT NULL
    )
    """,
    # The profile encoder's checkpoint: safetensors bytes + JSON config (no pickle).
    """
    CREATE TABLE IF NOT EXISTS model_checkpoints (
        run_id INTEGER NOT NULL,
        name VARCHAR NOT NULL,
        config JSON,
        weights BLOB
    )
    """,
    # Encoder vocabulary: the item index used by the checkpoint.
    """
    CREATE TABLE IF NOT EXISTS encoder_items (
        run_id INTEGER NOT NULL,
        item_index INTEGER NOT NULL,
        item_id VARCHAR NOT NULL
    )
    """,
    # Training curve, one row per epoch.
    """
    CREATE TABLE IF NOT EXISTS training_curve (
        run_id INTEGER NOT NULL,
        epoch INTEGER NOT NULL,
        train_loss DOUBLE,
        val_ndcg10 DOUBLE,
        val_recall10 DOUBLE,
        seconds DOUBLE
    )
    """,
    # Profile vectors (sequence representation fused with standardised behaviour features).
    """
    CREATE TABLE IF NOT EXISTS profiles (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        vector FLOAT[] NOT NULL
    )
    """,
    # Segments come in lenses (core.segments.lenses): 'taste' (segments, segment_info,
    # segment_traits) and 'lifecycle' (lifecycle_segments, lifecycle_info, lifecycle_traits),
    # with the same columns; LENS_DDL below creates both.
    # 2-D UMAP coordinates per user.
    """
    CREATE TABLE IF NOT EXISTS user_map (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        x DOUBLE NOT NULL,
        y DOUBLE NOT NULL
    )
    """,
    # Association rules; segment_id NULL = the whole shop. Items are item_ids.
    """
    CREATE TABLE IF NOT EXISTS rules (
        run_id INTEGER NOT NULL,
        segment_id INTEGER,
        antecedent VARCHAR[] NOT NULL,
        consequent VARCHAR[] NOT NULL,
        support DOUBLE,
        confidence DOUBLE,
        lift DOUBLE,
        leverage DOUBLE,
        conviction DOUBLE,
        count BIGINT,
        segment_ratio DOUBLE          -- confidence in segment / confidence overall (segment rules)
    )
    """,
    # Item themes (core.themes): every interacted item with text in one theme per run.
    """
    CREATE TABLE IF NOT EXISTS item_themes (
        run_id INTEGER NOT NULL,
        item_id VARCHAR NOT NULL,
        theme_id INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS theme_info (
        run_id INTEGER NOT NULL,
        theme_id INTEGER NOT NULL,
        label VARCHAR NOT NULL,       -- distinctive title words, e.g. 'Christmas tree'
        keywords VARCHAR[],
        n_items BIGINT,
        buyers BIGINT,
        revenue DOUBLE
    )
    """,
    # The taste lens's shopper vectors (core.segments.taste): what a shopper buys and is expected
    # to buy, in the space the taste segments and the map are computed in.
    """
    CREATE TABLE IF NOT EXISTS taste_vectors (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        vector FLOAT[] NOT NULL
    )
    """,
    # Predictions (core.predictions): one row per shopper and score, with its percentile among
    # the shoppers scored and the features that push it up the most.
    """
    CREATE TABLE IF NOT EXISTS predictions (
        run_id INTEGER NOT NULL,
        user_id VARCHAR NOT NULL,
        score VARCHAR NOT NULL,       -- purchase | goal | churn | value
        value DOUBLE,                 -- probability, or amount in the store's currency
        percentile DOUBLE,            -- 0-100, higher = more likely / more valuable
        reasons VARCHAR[]
    )
    """,
    # The backtest of each score against its baseline (latest horizon held out).
    """
    CREATE TABLE IF NOT EXISTS prediction_backtest (
        run_id INTEGER NOT NULL,
        score VARCHAR NOT NULL,
        title VARCHAR,
        definition VARCHAR,
        horizon_days DOUBLE,
        metric VARCHAR NOT NULL,      -- auc | lift_top10 | calibration_error | mae | rmse | ...
        model DOUBLE,
        baseline DOUBLE,
        model_low DOUBLE,             -- 95 % bootstrap interval (AUC)
        model_high DOUBLE,
        baseline_low DOUBLE,
        baseline_high DOUBLE,
        shoppers BIGINT,
        positive_rate DOUBLE
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS prediction_reliability (
        run_id INTEGER NOT NULL,
        score VARCHAR NOT NULL,
        model VARCHAR NOT NULL,       -- model | baseline
        bin INTEGER,
        predicted DOUBLE,
        observed DOUBLE,
        shoppers BIGINT
    )
    """,
    # Offline evaluation, one row per recommender.
    """
    CREATE TABLE IF NOT EXISTS evaluations (
        run_id INTEGER NOT NULL,
        recommender VARCHAR NOT NULL,
        recall10 DOUBLE,
        ndcg10 DOUBLE,
        hitrate10 DOUBLE,
        mrr10 DOUBLE,
        coverage DOUBLE,
        users_evaluated BIGINT,
        params JSON
    )
    """,
]


# One set of tables per segment lens, same columns (see core.segments.lenses).
LENS_TABLES = {
    "taste": ("segments", "segment_info", "segment_traits"),
    "lifecycle": ("lifecycle_segments", "lifecycle_info", "lifecycle_traits"),
}


def _lens_ddl(members: str, info: str, traits: str) -> list[str]:
    return [
        # Membership. segment_id -1 = "unassigned" (DBSCAN noise).
        f"""
        CREATE TABLE IF NOT EXISTS {members} (
            run_id INTEGER NOT NULL,
            user_id VARCHAR NOT NULL,
            segment_id INTEGER NOT NULL,
            distance DOUBLE               -- to the segment centre (taste space); NULL: rules
        )
        """,
        f"""
        CREATE TABLE IF NOT EXISTS {info} (
            run_id INTEGER NOT NULL,
            segment_id INTEGER NOT NULL,
            name VARCHAR NOT NULL,
            description VARCHAR,
            color VARCHAR,                -- hex colour, the same on every page
            size BIGINT,
            user_share DOUBLE,
            revenue_share DOUBLE,
            recency_median DOUBLE,
            frequency_median DOUBLE,
            monetary_median DOUBLE,
            representative_users VARCHAR[]
        )
        """,
        # What sets a segment apart: only qualifying traits (core.segments.traits).
        f"""
        CREATE TABLE IF NOT EXISTS {traits} (
            run_id INTEGER NOT NULL,
            segment_id INTEGER NOT NULL,
            dimension VARCHAR NOT NULL,
            value VARCHAR NOT NULL,
            support DOUBLE,               -- share of the segment's users with this trait
            population_support DOUBLE,    -- share of all users with this trait
            lift DOUBLE
        )
        """,
    ]


# Columns added after the first release (ALTER ... ADD COLUMN IF NOT EXISTS keeps old stores).
LENS_INFO_COLUMNS = {
    "rule": "VARCHAR",            # lifecycle: the rule that puts a shopper in the segment
    "facts": "JSON",              # the figures behind the name and description
    "position": "INTEGER",        # display order
}
LENS_TRAIT_COLUMNS = {
    "members": "BIGINT",          # members with the trait
    "p_value": "DOUBLE",          # one-sided Fisher exact test, Bonferroni-corrected
    "label": "VARCHAR",           # words for the value (item title, theme label, ...)
}


# Review events' rating and text (``core.ingest``: the rating / review roles), one row per event
# that has either; kept beside ``events`` so the events table keeps its columns.
BASE_DDL.append(
    """
    CREATE TABLE IF NOT EXISTS event_reviews (
        event_id BIGINT NOT NULL,
        rating DOUBLE,
        review_text VARCHAR,
        ingest_id INTEGER
    )
    """
)


class SchemaVersionError(RuntimeError):
    pass


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the base tables (idempotent) and check/record the schema version."""
    for ddl in BASE_DDL:
        con.execute(ddl)
    for members, info, traits in LENS_TABLES.values():
        for ddl in _lens_ddl(members, info, traits):
            con.execute(ddl)
        for col, typ in LENS_INFO_COLUMNS.items():
            con.execute(f"ALTER TABLE {info} ADD COLUMN IF NOT EXISTS {col} {typ}")
        for col, typ in LENS_TRAIT_COLUMNS.items():
            con.execute(f"ALTER TABLE {traits} ADD COLUMN IF NOT EXISTS {col} {typ}")
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None:
        con.execute("INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif int(row[0]) > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"This store uses schema version {row[0]}, newer than this Segment Studio "
            f"(version {SCHEMA_VERSION}). Upgrade Segment Studio (pip install -U) to open it."
        )
    elif int(row[0]) < SCHEMA_VERSION:
        migrate(con, int(row[0]))


def migrate(con: duckdb.DuckDBPyConnection, from_version: int) -> None:
    """Upgrade an older store in place (inside a write transaction). No migrations yet."""
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])


def schema_version(con: duckdb.DuckDBPyConnection) -> int | None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except duckdb.CatalogException:
        return None
    return int(row[0]) if row else None


def store_currency(con, default: str = "£") -> str:
    """The shop's currency symbol: the store's ``currency`` setting (meta, set at ingest) when it
    has one, else ``default``."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'currency'").fetchall()
    except Exception:  # noqa: BLE001 - an older store without the setting
        row = []
    return str(row[0][0]) if row and row[0][0] else default
