"""Benchmarks. Importing `nmt` first lets it set torch's allocator options before any script loads torch."""
import nmt  # noqa: F401
