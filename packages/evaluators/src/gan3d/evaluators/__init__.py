"""gan3d.evaluators: metrics (FID, KID, ID, RE, DE, PE) and visualizers."""
