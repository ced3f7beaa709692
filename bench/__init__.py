"""Benchmarks. They measure what the command line runs, so they apply its memory settings (nmt/allocator.py)
before any script loads torch."""
from nmt import allocator

allocator.configure()
