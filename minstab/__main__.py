"""``python -m minstab``: the same as the ``minstab`` command."""

import sys

from .cli import main

sys.exit(main())
