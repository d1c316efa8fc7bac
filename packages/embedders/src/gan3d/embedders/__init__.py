"""gan3d.embedders: point embedders, feature decoders, stochasticity mappers."""
