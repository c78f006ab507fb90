"""deskbot's benchmarks: rule evaluation against peer engines (`python -m bench`) and cycle cost (bench/cycle.py)."""
