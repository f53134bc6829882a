"""The regression gate: baselines of a run's figures, and the statistics that compare two runs."""
