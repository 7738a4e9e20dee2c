"""Outgoing mail: queueing a reply in the request's transaction, delivering it, the worker."""
