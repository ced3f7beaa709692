"""nmt: recurrent sequence models (translation, summarisation, character LM, tagging) for the CPU.

Importing nmt changes nothing in the process: the memory settings of nmt/allocator.py are applied by the command
line (before torch loads) and by `nmt.runs.start_run` for training runs started from Python.
"""
