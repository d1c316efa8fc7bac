"""Point embedders: sample points ``[B, R, S, 3]`` -> features ``[B, R, S, C]``."""
