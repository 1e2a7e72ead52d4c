"""Running the real `chalkbox` command in a subprocess."""
import subprocess
import sys


def run_chalkbox(*args, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "appliance", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
