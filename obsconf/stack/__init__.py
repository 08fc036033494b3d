"""The observability stack the suite runs against: local processes, or external URLs."""
