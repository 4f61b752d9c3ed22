"""diffusers-hub plugin: ddim."""
