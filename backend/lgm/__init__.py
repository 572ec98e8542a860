"""LGM, the reconstructor of HQ-Head (SPEC 4.11): Gaussians from 4 generated views, fine-tuned per subject."""
