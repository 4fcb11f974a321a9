"""edgefer.bench: timing harness, records and the paper-shaped report."""
