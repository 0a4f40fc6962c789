"""Embedding backends, one module each. :mod:`index.embed` finds them through the
``policybot.embedders`` entry points (see ``pyproject.toml``) and calls each module's
``register_embedders(register)`` hook; nothing here imports them.
"""
