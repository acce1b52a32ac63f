"""Stacks compose constructs and declare outputs; they hold no resource details of their own."""

from .remote_state import RemoteStateStack
from .service import ServiceStack

__all__ = ["RemoteStateStack", "ServiceStack"]
