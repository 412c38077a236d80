"""Sample quality: Fréchet distance, KID/precision/recall, feature extractors, latent diagnostics and the Table 1 aggregation."""
