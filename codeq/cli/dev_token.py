"""``codeq auth dev-token`` (being written)."""


def dev_token() -> None:
    """Print a dev-mode token."""
