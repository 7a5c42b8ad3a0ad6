"""Robustified steering directions: optimise a few directions for safety under red-teaming while they stay
close to their emotion (``optimize_direction``), against naive emotion steering and metric-only directions."""
