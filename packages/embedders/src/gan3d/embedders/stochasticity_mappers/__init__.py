"""Stochasticity mappers: noise ``z [B, z_dim]`` (and a condition) -> ``ws [B, num_ws, w_dim]``."""
