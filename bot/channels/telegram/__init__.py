"""Telegram through python-telegram-bot: updates in, replies and outbox rows out."""

import os

# Opt in to PTB's timedelta durations now (RetryAfter etc.); the int form is deprecated. Set
# here, before any module of this package imports ``telegram``.
os.environ.setdefault("PTB_TIMEDELTA", "true")
