"""gan3d.methods: the nine method recipes, discriminators and losses."""
