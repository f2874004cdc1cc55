"""Kernels: built-ins, the spec parser, and kernels + options -> a layer."""
