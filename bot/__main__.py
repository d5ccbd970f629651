"""`python -m bot` is `ktn-bot`."""

import sys

from bot.cli import main

sys.exit(main())
