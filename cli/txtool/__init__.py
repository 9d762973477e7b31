"""txtool: install command-line Python tools; a partial operation is never reported as success.

Kept empty of imports on purpose: ``txtool --version`` must start without loading the
engine, the backend or a progress library.
"""

__version__ = "0.3.0"
