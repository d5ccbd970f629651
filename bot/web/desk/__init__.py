"""The desk: a web dashboard for coordinators and officers (``/dasbor``)."""

from bot.web.desk.app import Desk

__all__ = ["Desk"]
