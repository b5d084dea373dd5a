"""The HTTP API (``tablemake serve``): a client of the core, like the CLI.

``app.create_app`` builds the ASGI app for an open session; ``server.serve`` holds the
project and runs it.
"""
