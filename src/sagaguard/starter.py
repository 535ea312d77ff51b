"""The commented starter spec that ``sagaguard init`` writes.

It is the order checkout of the recovery guide with every field explained, kept as a
packaged YAML file (``sagaguard/templates/starter.yaml``) so it reads like the spec a
team will write, and so tests can prove it loads.
"""

from __future__ import annotations

import shlex
from importlib import resources

__all__ = ["STARTER_FILE_NAME", "starter_spec"]

STARTER_FILE_NAME = "saga.yaml"


def starter_spec(file_name: str = STARTER_FILE_NAME) -> str:
    """The starter spec text; its usage comments name ``file_name``."""
    text = resources.files("sagaguard").joinpath("templates/starter.yaml").read_text("utf-8")
    if file_name == STARTER_FILE_NAME or not file_name.isprintable():
        # A name that cannot sit on one comment line keeps the generic one.
        return text
    return text.replace(STARTER_FILE_NAME, shlex.quote(file_name))
