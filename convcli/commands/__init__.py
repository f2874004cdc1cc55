"""The library side of each command."""
