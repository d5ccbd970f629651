"""Roles of a worker: leadership, the scheduler, periodic jobs, the worker supervisor."""
