"""leanvla: cheap adaptation of Vision-Language-Action robot policies.

The library is importable without side effects; `leanvla.cli` is the command line on top of it.
"""

__version__ = "0.1.0"
