"""DuckDB store: schema, safe publishing of writes, recorded runs, records (saved segments...),
run retention."""

from core.store.db import ReadConnection, Store, StoreNotFound, StoreVersion
from core.store.publish import StoreError
from core.store.runs import finish_run, get_run, latest_run, list_runs, start_run, update_run_metrics
from core.store.schema import EVENT_TYPES, SCHEMA_VERSION, ensure_schema, store_currency

__all__ = [
    "store_currency",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "ReadConnection",
    "Store",
    "StoreError",
    "StoreNotFound",
    "StoreVersion",
    "ensure_schema",
    "finish_run",
    "get_run",
    "latest_run",
    "list_runs",
    "start_run",
    "update_run_metrics",
]
