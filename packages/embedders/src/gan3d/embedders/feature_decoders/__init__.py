"""Feature decoders: features ``[B, R, S, C]`` -> :class:`gan3d.core.types.Field`."""
