"""0014: an index on the ledger for the statistics page (no rows change)."""

REVISION = "0014_stats_indexes"

ROWS: dict[str, list[dict[str, object]]] = {}
