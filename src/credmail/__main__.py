"""Allows `python -m credmail`."""

from credmail.cli import main

raise SystemExit(main())
