"""Entry points: thin doors (CLI, daemon, demo) that parse input, call a desk, render."""
