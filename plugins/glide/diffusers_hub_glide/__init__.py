"""diffusers-hub plugin: glide (GLIDE text-to-image with classifier-free guidance)."""
