"""Older names of the generating operations, kept for existing scripts (see ``minim``)."""
