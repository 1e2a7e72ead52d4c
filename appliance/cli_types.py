"""click parameter types shared by every command group."""
from pathlib import Path

import click

existing_dir = click.Path(exists=True, file_okay=False, path_type=Path)
existing_file = click.Path(exists=True, dir_okay=False, path_type=Path)
new_dir = click.Path(file_okay=False, path_type=Path)
