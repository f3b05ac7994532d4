"""Image generators and their latent spaces: loading, walks, edits and inversion."""
