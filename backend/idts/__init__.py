"""ID-TS multi-view diffusion (HQ-Head) re-implemented on diffusers.

The numerical contract is `fixtures/idts/SPEC.md`; every component here has a parity test in `tests/idts/`.
Modules: `embeddings` (sinusoids, vector conditioning), `unet` (spatio-temporal UNet), `vae`, `identity`
(IR-SE-50 ArcFace + token projection), `aesthetic`, `clip` (image towers), `conditioner`, `sampler`
(EDM Euler + linear guidance), `frames` (framing and hand-off resizes), `keymaps` + `converter` (HQ-Head
checkpoints -> diffusers folders), `cameras` (the reference's poses and Plücker rays), `pipeline` (two-stage ring
generation, memory modes), `builders` (seeded full-size / small models for benchmarks and tests).
The job stage that writes the 96-view orbit is `backend/stages/multiview.py`.
"""
