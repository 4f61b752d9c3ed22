"""diffusers-hub plugin: ddpm."""
