"""The package version, in one place: the package exports it and the Hub downloads report it."""
__version__ = "0.1.0"
