"""Test-only helpers: simulated chats through the core, the Twilio fake, shared fixtures."""
