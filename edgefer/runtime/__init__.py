"""Inference backends behind one interface, and the Recognizer on top of them."""

from edgefer.runtime.base import Backend
from edgefer.runtime.recognizer import Face, Recognizer
from edgefer.runtime.registry import BACKENDS, open_backend

__all__ = ["BACKENDS", "Backend", "Face", "Recognizer", "open_backend"]
