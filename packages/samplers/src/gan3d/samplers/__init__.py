"""gan3d.samplers: pose samplers, ray and point samplers, importance sampling."""
