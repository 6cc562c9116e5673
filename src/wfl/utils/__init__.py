"""Small helpers shared by wfl's operations."""
