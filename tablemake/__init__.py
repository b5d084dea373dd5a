"""tablemake: make for warehouse tables."""

__version__ = "0.1.0"
