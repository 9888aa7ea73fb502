"""The exceptions dasct raises on purpose; everything else is a crash (see cli.py)."""

from __future__ import annotations


class DasctError(Exception):
    """A failure with a one-line message meant for the user (exit 1)."""


class ConfigError(DasctError):
    """A bad configuration: the message names the file and the key."""


class GitError(DasctError):
    """A git command failed; the message names the command and git's first error line."""
