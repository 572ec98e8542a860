"""ID-TS fine-tuning (`headforge train CONFIG`): stage 1 or stage 2 of our ID-TS port on a 96-view head dataset.

`config` (the validated run configuration, read from YAML/JSON/TOML), `data` (16-frame ring clips drawn from the
dataset's views, one seeded draw per step), `losses` (the reference's EDM diffusion loss, LPIPS and ArcFace identity
on the decoded x̂₀, with gradients), `expression` (the landmark-region expression loss), `trainer` (the accelerate
loop: mixed precision, gradient accumulation, EMA, checkpoints and resume, logs, export as a converted stage folder
that `idts.pipeline.StageModels.from_pretrained` loads), `cli`.
"""
