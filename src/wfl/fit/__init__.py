"""Potential fits (GAP, ACE, committees), each runnable as a single queued job."""
