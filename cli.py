#!/usr/bin/env python
"""Run the nmt command line: python cli.py --help"""
from nmt.cli import main

if __name__ == "__main__":
    main()
