"""edgefer.train: the MicroExpNet family, the Inception v3 teacher, data, splits and distillation."""
