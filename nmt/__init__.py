"""nmt: recurrent sequence models (translation, summarisation, character LM, tagging) for the CPU."""
from nmt import allocator

allocator.configure()   # before torch loads: see allocator.py
