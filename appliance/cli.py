"""The ``chalkbox`` command: one entry point, a group per user.

``box`` (technicians and teachers, on the box) is always here. ``train`` and
``export`` (the centre) are added only when their heavy dependencies are
installed; otherwise they say how to install them. Deliberate errors print one
line and a hint on stderr and exit non-zero: never a traceback.
"""
from __future__ import annotations

import importlib.util
import sys

import click

from .errors import ApplianceError

CENTRE_DEPS = ("torch", "transformers", "optimum")


class ChalkboxGroup(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ApplianceError as exc:
            fail(exc.message, exc.hint)
        except OSError as exc:
            fail(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}",
                 "check the path and its permissions")


def fail(message: str, hint: str | None = None, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    if hint:
        click.echo(f"hint: {hint}", err=True)
    sys.exit(code)


@click.group(cls=ChalkboxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chalkbox")
def main() -> None:
    """Chalkbox: short-answer grading and questions on the classroom Wi-Fi."""


def _centre_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in CENTRE_DEPS)


def _missing_group(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True},
                   help=f"(not installed) the centre's '{name}' commands.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args):
        fail(f"'chalkbox {name}' needs the centre's dependencies (torch, transformers, optimum)",
             "install them with: pip install torch==2.13.0 && pip install 'chalkbox[train]'")
    return missing


def _register() -> None:
    from .box_cli import box
    main.add_command(box)
    if _centre_installed():
        from export.cli import export
        from training.cli import demo, train
        main.add_command(train)
        main.add_command(export)
        main.add_command(demo)
    else:
        for name in ("train", "export", "demo"):
            main.add_command(_missing_group(name))


_register()
