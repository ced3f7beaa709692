"""Configuration: component dataclasses (components.py), task setups and presets (tasks.py), and the machinery
that builds and checks them (base.py). `from nmt.config import X` reaches all of it."""
from nmt.config.base import (ConfigError, Count, Fraction, NonNegative, Positive, Range, Size, build_setup, from_dict,
                             make, override, to_dict)
from nmt.config.components import *  # every component config
from nmt.config.tasks import *  # every setup and preset table
