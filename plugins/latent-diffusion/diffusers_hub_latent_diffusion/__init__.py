"""diffusers-hub plugin: latent diffusion."""
