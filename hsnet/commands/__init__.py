"""Subcommands of the ``hsnet`` CLI, one module each (see ``hsnet.cli``)."""
