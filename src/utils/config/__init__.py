"""Typed configs (the dataclasses every entry script declares its keys with, and `validate`), the one
instantiate allow-list and the config resolvers. Imports src.utils.core only."""
