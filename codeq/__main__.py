"""``python -m codeq``: the same as the ``codeq`` command."""

from codeq.cli.main import main

if __name__ == "__main__":
    main()
