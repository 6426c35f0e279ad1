"""Segments a marketer defines and campaigns use: definitions built from conditions
(``definition``, ``conditions``), phrase matching (``like``), frozen audiences with seeded
hold-out groups and their measured effect (``audience``)."""

from core.audiences.conditions import KINDS, DefinitionError
from core.audiences.definition import count, describe, members, parse

__all__ = ["KINDS", "DefinitionError", "count", "describe", "members", "parse"]
