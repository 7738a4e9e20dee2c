"""0010: the web app's limits, counted in the database (shared by replicas)."""

REVISION = "0010_web_limits"

ROWS = {
    "web_limits": [
        {"name": "post", "client": "203.0.113.7", "window_start": 1_788_000_000, "hits": 3},
    ],
}
