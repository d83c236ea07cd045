"""The desk's benchmarks: every figure beside the bare figure or floor it answers to, as a ratio
measured in the same run. `python -m bench` (full) or `python -m bench --quick` (smoke)."""
