"""Data: dataset layouts, the authors' face crops, the on-disk crop cache, k-fold splits, one fold in memory."""
