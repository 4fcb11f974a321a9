"""The bundled pretrained models (data files; see README.md and LICENSE-microexpnet here)."""
