"""The compose loader: a pipeline of pure stages (see ``pipeline.py`` for the order)."""
