"""Choosing which configurations go on to the next step (e.g. from generation to fitting)."""
