"""SQLAlchemy storage: models, engine set-up and the unit of work."""
