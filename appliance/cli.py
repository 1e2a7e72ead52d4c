"""The ``chalkbox`` command: one entry point, a group per user.

``box`` (technicians and teachers, on the box) is always here. The centre's
groups (``train``, ``export``, ``demo``) are plugins found through the
``chalkbox.commands`` entry points, so this package never imports the centre's
code; they are added only when torch, transformers and optimum are installed,
and otherwise say how to install them.

Every failure prints one line on stderr, ``error: WHAT (hint: HOW TO FIX)``, and
exits non-zero: never a traceback.
"""
from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points

import click

from .errors import ApplianceError

CENTRE_DEPS = ("torch", "transformers", "optimum")
PLUGIN_GROUP = "chalkbox.commands"


def fail(message: str, hint: str | None = None, code: int = 1) -> None:
    line = f"error: {message}" + (f" (hint: {hint})" if hint else "")
    click.echo(" ".join(line.split()), err=True)
    sys.exit(code)


class PluginGroup(click.Group):
    """A group whose centre commands are loaded from entry points only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(p.name for p in _plugins())})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        plugin = next((p for p in _plugins() if p.name == name), None)
        if plugin is None:
            return None
        return plugin.load() if _centre_installed() else _missing(name)


def _plugins():
    return entry_points(group=PLUGIN_GROUP)


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="chalkbox")
def cli() -> None:
    """Chalkbox: short-answer grading and questions on the classroom Wi-Fi."""


def main(args: list[str] | None = None, prog_name: str = "chalkbox") -> None:
    """The console script: run the command, turn every known failure into one line."""
    try:
        result = cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        fail("aborted", code=130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else prog_name
        fail(exc.format_message(), f"see '{command} --help'", code=2)
    except click.ClickException as exc:
        fail(exc.format_message(), code=exc.exit_code)
    except ApplianceError as exc:
        fail(exc.message, exc.hint)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        fail(f"{exc.strerror or exc}{where}", "check the path, its permissions and free space")
    sys.exit(result if isinstance(result, int) else 0)


def _centre_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in CENTRE_DEPS)


def _missing(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True},
                   help=f"(not installed) the centre's '{name}' commands.")
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def missing(args):
        fail(f"'chalkbox {name}' needs the centre's dependencies (torch, transformers, optimum)",
             "pip install torch==2.13.0 && pip install 'chalkbox[train]'")
    return missing


def _register() -> None:
    from . import ops_cli, provision_cli
    from .box_cli import box, data_dir_option

    ops_cli.register(box)
    provision_cli.register(box, data_dir_option)
    cli.add_command(box)


_register()
