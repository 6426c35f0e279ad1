"""Segments over builds: matching a build's segments to the previous build's (``matching``) and
the flows of shoppers between any two builds (``flows``)."""

from core.migration.flows import MigrationError, migration, summary

__all__ = ["MigrationError", "migration", "summary"]
