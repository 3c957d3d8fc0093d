"""``python -m crimecast.cli``: the same as the ``crimecast`` command."""

from crimecast.cli.main import app

if __name__ == "__main__":  # pragma: no cover
    app()
