"""dasct: Defect And Source Change Tracker."""

__version__ = "0.1.0"
