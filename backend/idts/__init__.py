"""ID-TS multi-view diffusion (HQ-Head) re-implemented on diffusers.

The numerical contract is `fixtures/idts/SPEC.md`; every component here has a parity test in `tests/idts/`.
Modules: `embeddings` (sinusoids, vector conditioning), `unet` (spatio-temporal UNet), `vae`, `identity`
(IR-SE-50 ArcFace + token projection), `aesthetic`, `clip` (image towers), `conditioner`, `sampler`
(EDM Euler + linear guidance), `converter` (HQ-Head checkpoints -> diffusers folders), `cameras`,
`pipeline` (two-stage ring generation, 96-view orbit).
"""
