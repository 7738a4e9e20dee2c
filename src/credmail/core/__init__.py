"""The pure core: values, parsing, classification, verification and decisions (stdlib only)."""
