"""The touch-less migration engine: trigger files, archive, steps, journal, engine.

`trigger` defines the self-contained instruction to migrate one enhancement into one
environment and `create` builds it from a git range; the other modules apply it and can
always put the environment back.
"""
