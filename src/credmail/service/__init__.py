"""Use cases: process one message, review decisions, outbox delivery, directory import."""
