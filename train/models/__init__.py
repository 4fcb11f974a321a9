"""The networks: the MicroExpNet family, the Inception v3 teacher, the registry that builds any of them, weights."""
