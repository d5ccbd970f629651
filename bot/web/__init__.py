"""The HTTP side: the one Starlette app (webhooks, health, metrics), and serving it."""
