"""The runner's parts: resolving actions to writes, crash points, the cycle, scheduling, the demo."""
