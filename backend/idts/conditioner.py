"""The ID-TS conditioner (SPEC 4.3, 4.4): the six reference embedders grouped into crossattn / vector / concat.

crossattn = [CLIP image token, ArcFace token]  [B, 2, 1024]   (uncond: zeros)
vector    = [aesthetic | elevation | cond_aug]  [B, 768]       (identical in uncond)
concat    = VAE posterior mode of the noised conditioning frame, repeated over T frames  [B*T, 4, h, w] (uncond: zeros)
"""
from __future__ import annotations

import torch
from diffusers import AutoencoderKL
from torch import nn
from transformers import CLIPVisionModelWithProjection

from .aesthetic import AestheticMLP, aesthetic_vector
from .clip import clip_token
from .embeddings import aesthetic_embedding, scalar_embedding
from .identity import IdentityEncoder
from .sampler import Conditioning
from .vae import encode_mode

COND_AUG = 0.02


class IDTSConditioner(nn.Module):
    """Holds the conditioning models of one stage; `forward` returns (cond, uncond)."""

    def __init__(self, image_encoder: CLIPVisionModelWithProjection, aesthetic_encoder: CLIPVisionModelWithProjection,
                 aesthetic_mlp: AestheticMLP, identity_encoder: IdentityEncoder, concat_vae: AutoencoderKL,
                 chunk: int = 256):
        super().__init__()
        self.image_encoder = image_encoder
        self.aesthetic_encoder = aesthetic_encoder
        self.aesthetic_mlp = aesthetic_mlp
        self.identity_encoder = identity_encoder
        self.concat_vae = concat_vae
        self.chunk = chunk

    def crossattn(self, image: torch.Tensor) -> torch.Tensor:
        """[CLIP token, ArcFace token] of the clean frame [B, 3, R, R] in [-1, 1] -> [B, 2, D]."""
        clip = clip_token(self.image_encoder, image)
        ident = self.identity_encoder(image.to(self.identity_encoder.dtype))
        return torch.cat([clip.to(ident.dtype), ident], dim=1)

    def vector(self, aesthetic_frame: torch.Tensor, elevation: torch.Tensor, cond_aug: torch.Tensor,
               score: float | None = None) -> torch.Tensor:
        """[aesthetic | elevation | cond_aug] -> [B, 3 chunk]. `score` replaces the predicted aesthetic score."""
        if score is None:
            aes = aesthetic_vector(self.aesthetic_encoder, self.aesthetic_mlp, aesthetic_frame, self.chunk)
        else:
            aes = aesthetic_embedding(torch.full((aesthetic_frame.shape[0],), float(score)), self.chunk)
        return torch.cat([aes.float().cpu(), scalar_embedding(elevation.cpu(), self.chunk),
                          scalar_embedding(cond_aug.cpu(), self.chunk)], dim=-1).to(aesthetic_frame.device)

    def concat(self, cond_frames: torch.Tensor, num_frames: int) -> torch.Tensor:
        """Mode latent of the noised frame [B, 3, R, R], repeated per frame -> [B*T, 4, R/8, R/8]."""
        z = encode_mode(self.concat_vae, cond_frames)
        return z.repeat_interleave(num_frames, dim=0)

    def forward(self, image: torch.Tensor, cond_frames: torch.Tensor, elevation: torch.Tensor,
                cond_aug: torch.Tensor, num_frames: int, aesthetic_frame: torch.Tensor | None = None,
                score: float | None = None) -> tuple[Conditioning, Conditioning]:
        """image: clean frame [B, 3, R, R] in [-1, 1]; cond_frames: image + cond_aug noise; elevation, cond_aug: [B].
        aesthetic_frame: the video's middle frame (defaults to `image`, as at inference)."""
        frame = image if aesthetic_frame is None else aesthetic_frame
        crossattn = self.crossattn(image)
        vector = self.vector(frame, elevation, cond_aug, score)
        concat = self.concat(cond_frames, num_frames)
        cond = Conditioning(crossattn, vector, concat)
        uncond = Conditioning(torch.zeros_like(crossattn), vector.clone(), torch.zeros_like(concat))
        return cond, uncond
