"""Contracts built from values this process computed itself, without validating them again.

Validation belongs at the boundaries (a message, a stored row, a user's file). The backtest builds
thousands of small contracts a second from numbers its own code just computed from validated
input (score lines folded from validated calls, feature rows computed from a validated replay);
validating each again only re-checks that code's arithmetic and was a tenth of a backtest. A
caller passes every field, in the contract's field order, each of its declared type: the object
is then exactly the one validation would have built (tests compare the two field for field).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


# BaseModel's own slots, set through their descriptors (object.__setattr__ looks each name up
# first: with it a trusted build cost about what validating the model did).
_DICT = BaseModel.__dict__["__dict__"].__set__
_FIELDS_SET = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_EXTRA = BaseModel.__dict__["__pydantic_extra__"].__set__
_PRIVATE = BaseModel.__dict__["__pydantic_private__"].__set__


def built(cls: type[M], values: dict[str, Any], given: Iterable[str] | None = None) -> M:
    """An instance of cls holding values as they are; given names the fields a validated build
    would record as set (default: all of them)."""
    item = cls.__new__(cls)
    _DICT(item, values)
    _FIELDS_SET(item, set(values if given is None else given))
    _EXTRA(item, None)
    _PRIVATE(item, None)
    return item
