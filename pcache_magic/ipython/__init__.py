"""The thin IPython layer: the extension's entry points, the magics, their arguments and
settings, cell parsing and what the cells print."""
