"""Delivery: the outbox dispatcher, flood windows and the limits several workers share."""
