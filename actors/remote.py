"""Typed remote calls: an actor's method named through its class, so mypy checks it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from ray import ObjectRef
from ray.actor import ActorHandle

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")


def remote(
    handle: ActorHandle[A],
    method: Callable[Concatenate[A, P], Awaitable[R]],
    *args: P.args,
    **kwargs: P.kwargs,
) -> ObjectRef[R]:
    """Call ``method`` of the actor behind ``handle``: a renamed method, a wrong argument
    or a misused result fails the type check, not the call."""
    ref: ObjectRef[R] = getattr(handle, method.__name__).remote(*args, **kwargs)
    return ref
