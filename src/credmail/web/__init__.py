"""The web entry point: the reset page families open (and, later, the secretariat's console).

Like the CLI it is a door: it renders pages and calls `App.desks`; it never imports an
adapter. `create_web_app(app, settings)` builds the ASGI application; `credmail web`
serves it with uvicorn.
"""
