"""Model family recipes (data), installed as the package ignite.recipes."""
