"""The HTTP server (FastAPI): app factory (``codeq.server.app.create_app``), routes by
resource, middleware, background jobs.

Nothing is imported here, so that a plugin importing ``codeq.server.responses`` or
``codeq.server.deps`` does not pull in the whole server at CLI start-up.
"""
