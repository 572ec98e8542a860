"""The ID-TS spatio-temporal UNet: diffusers' `UNetSpatioTemporalConditionModel` with the two SPEC 6 fixes.

1. GroupNorm eps: every ResBlock norm (spatial and temporal) uses 1e-5 as in sgm; diffusers builds some with 1e-6.
2. The 768-d vector `y` is built outside the UNet (`embeddings.vector_condition`) and fed straight into
   `add_embedding`, bypassing diffusers' `add_time_proj`.
It also takes per-frame timesteps and an optional `image_only_indicator`, like sgm's `VideoUNet`.
"""
from __future__ import annotations

import inspect

import torch
from diffusers import UNetSpatioTemporalConditionModel

RESNET_GROUPNORM_EPS = 1e-5

# Full-size configuration (SVD-XT layout; SPEC 4.5 / 6).
REAL_UNET_CONFIG = dict(
    sample_size=None, in_channels=8, out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",),
    up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3,
    block_out_channels=(320, 640, 1280, 1280), addition_time_embed_dim=256,
    projection_class_embeddings_input_dim=768, layers_per_block=2, cross_attention_dim=1024,
    transformer_layers_per_block=1, num_attention_heads=(5, 10, 20, 20), num_frames=16,
)

# The fixtures' tiny configuration (unet_tiny.json / diffusers_mapping.json).
TINY_UNET_CONFIG = dict(
    sample_size=None, in_channels=8, out_channels=4,
    down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
    up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
    block_out_channels=(32, 64), addition_time_embed_dim=16, projection_class_embeddings_input_dim=48,
    layers_per_block=2, cross_attention_dim=64, transformer_layers_per_block=1, num_attention_heads=(2, 4),
    num_frames=4,
)


class IDTSUNet(UNetSpatioTemporalConditionModel):
    """`UNetSpatioTemporalConditionModel` with sgm's ResBlock GroupNorm eps and an external vector `y`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # the parent's __init__ registers the config
        for name, module in self.named_modules():
            if isinstance(module, torch.nn.GroupNorm) and ".resnets." in f".{name}":
                module.eps = RESNET_GROUPNORM_EPS
        self.add_time_proj = torch.nn.Identity()  # unused: `y` goes straight into add_embedding

    def forward(
        self,
        sample: torch.Tensor,  # [B*T, in_channels, h, w], frame index fastest
        timestep: torch.Tensor,  # [B*T] (c_noise per frame) or [B]
        encoder_hidden_states: torch.Tensor,  # [B, N, cross_attention_dim], per video
        vector: torch.Tensor,  # [B, projection_class_embeddings_input_dim], per video
        num_frames: int,
        image_only_indicator: torch.Tensor | None = None,  # [B, T]; zeros at inference
    ) -> torch.Tensor:  # [B*T, out_channels, h, w]
        n = sample.shape[0]
        batch = n // num_frames
        dtype = sample.dtype
        timestep = timestep.reshape(-1)
        if timestep.shape[0] == batch and batch != n:
            timestep = timestep.repeat_interleave(num_frames)
        emb = self.time_embedding(self.time_proj(timestep).to(dtype))  # [B*T, E]
        emb = emb + self.add_embedding(vector.to(dtype)).repeat_interleave(num_frames, dim=0)
        context = encoder_hidden_states.to(dtype).repeat_interleave(num_frames, dim=0)  # [B*T, N, D]
        if image_only_indicator is None:
            image_only_indicator = torch.zeros(batch, num_frames, dtype=dtype, device=sample.device)
        image_only_indicator = image_only_indicator.to(dtype)

        upsample_size = None
        forward_upsample_size = any(s % 2 ** self.num_upsamplers for s in sample.shape[-2:])
        h = self.conv_in(sample)
        skips = (h,)
        for block in self.down_blocks:
            kw = dict(hidden_states=h, temb=emb, image_only_indicator=image_only_indicator)
            if getattr(block, "has_cross_attention", False):
                kw["encoder_hidden_states"] = context
            h, res = block(**kw)
            skips += res
        h = self.mid_block(hidden_states=h, temb=emb, encoder_hidden_states=context,
                           image_only_indicator=image_only_indicator)
        for i, block in enumerate(self.up_blocks):
            res = skips[-len(block.resnets):]
            skips = skips[: -len(block.resnets)]
            if i < len(self.up_blocks) - 1 and forward_upsample_size:
                upsample_size = skips[-1].shape[2:]
            kw = dict(hidden_states=h, temb=emb, res_hidden_states_tuple=res,
                      image_only_indicator=image_only_indicator)
            if getattr(block, "has_cross_attention", False):
                kw["encoder_hidden_states"] = context
            if forward_upsample_size:
                kw["upsample_size"] = upsample_size
            h = block(**kw)
        h = self.conv_out(self.conv_act(self.conv_norm_out(h)))
        return h


# diffusers reads the accepted config keys from the __init__ signature: keep the parent's.
IDTSUNet.__init__.__signature__ = inspect.signature(UNetSpatioTemporalConditionModel.__init__)
