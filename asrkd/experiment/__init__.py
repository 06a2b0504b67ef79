"""Experiments as a whole: the results report (Table 1, sweep plot, small-data table)."""
