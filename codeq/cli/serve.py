"""``codeq serve`` (being written)."""

def serve() -> None:
    """Run the server."""
