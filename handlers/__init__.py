"""The channel-free conversation core: ``handlers.core.handle`` / ``handlers.core.process``.

Nothing in this package imports a channel SDK (telegram, twilio) or the ``bot`` package.
"""
