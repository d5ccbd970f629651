"""WhatsApp through Twilio: signed webhooks in, outbox rows out through the REST API."""
