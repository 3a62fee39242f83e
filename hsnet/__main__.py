"""``python -m hsnet`` is the ``hsnet`` command."""
import sys

from .cli import main

sys.exit(main())
