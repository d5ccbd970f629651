"""The channels: one package each (translate inbound, render, send, lifecycle)."""
