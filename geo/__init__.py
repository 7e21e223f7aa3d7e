"""Pure spatial logic for Wangge: CRS conversion, geometry checks, partitioning.

Imports no web framework and no database (DESIGN.md: ``api → db → geo``).
"""
