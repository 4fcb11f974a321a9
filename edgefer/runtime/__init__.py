"""Inference backends behind one interface, and the Recognizer on top of them."""

from edgefer.runtime.base import Backend
from edgefer.runtime.loader import BACKENDS, open_backend
from edgefer.runtime.recognizer import Face, Recognizer

__all__ = ["BACKENDS", "Backend", "Face", "Recognizer", "open_backend"]
