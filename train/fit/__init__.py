"""Fitting: the epoch loop, the losses, training checkpoints, run folders and their reports, runs."""
