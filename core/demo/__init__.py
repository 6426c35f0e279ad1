"""The seeded demo shop with planted shopper types (see ``core.demo.generate``)."""

from core.demo.generate import (
    SHOPPER_TYPES,
    TYPE_DESCRIPTIONS,
    TYPE_NAMES,
    DemoExistsError,
    build_catalogue,
    generate_demo,
)

__all__ = ["SHOPPER_TYPES", "TYPE_DESCRIPTIONS", "TYPE_NAMES", "DemoExistsError", "build_catalogue", "generate_demo"]
