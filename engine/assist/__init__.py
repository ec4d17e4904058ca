"""Classical (non-learned) helpers that speed up annotation, e.g. GrabCut from a box."""
from .grabcut import grabcut_mask

__all__ = ["grabcut_mask"]
