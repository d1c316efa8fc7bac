"""gan3d.renderers: volume renderers, upsamplers, mesh rasterization."""
