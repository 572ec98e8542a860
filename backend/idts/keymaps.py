"""Key maps from the reference (sgm / HQ-Head) state_dict names to ours.

Each `*_key` function maps one reference key (without its checkpoint prefix) to our parameter name, or raises
`KeyError` for a key it does not know; `convert_*` apply it to a whole state_dict and reshape where needed.
"""
from __future__ import annotations

import re

# ---------------------------------------------------------------------------------------------- UNet

_RES_SPATIAL = {"in_layers.0": "norm1", "in_layers.2": "conv1", "emb_layers.1": "time_emb_proj",
                "out_layers.0": "norm2", "out_layers.3": "conv2", "skip_connection": "conv_shortcut"}


def _unet_resblock(rest: str) -> str:
    """sgm VideoResBlock sub-key -> diffusers SpatioTemporalResBlock sub-key."""
    if rest == "time_mixer.mix_factor":
        return rest
    temporal = rest.startswith("time_stack.")
    if temporal:
        rest = rest[len("time_stack."):]
    for old, new in _RES_SPATIAL.items():
        if rest.startswith(old + "."):
            block = "temporal_res_block" if temporal else "spatial_res_block"
            return f"{block}.{new}.{rest[len(old) + 1:]}"
    raise KeyError(rest)


def _unet_transformer(rest: str) -> str:
    """sgm SpatialVideoTransformer sub-key -> diffusers TransformerSpatioTemporalModel sub-key."""
    m = re.match(r"time_pos_embed\.(0|2)\.(.+)$", rest)
    if m:
        return f"time_pos_embed.{'linear_1' if m.group(1) == '0' else 'linear_2'}.{m.group(2)}"
    if rest.startswith("time_stack."):
        return "temporal_transformer_blocks." + rest[len("time_stack."):]
    if re.match(r"(norm|proj_in|proj_out)\.|transformer_blocks\.|time_mixer\.mix_factor$", rest):
        return rest
    raise KeyError(rest)


def unet_key(key: str, layers_per_block: int, attention_levels: list[bool]) -> str:
    """Map one `VideoUNet` key (no `model.diffusion_model.` prefix) to `IDTSUNet`.

    layers_per_block: num_res_blocks; attention_levels[b]: whether down level b has transformers.
    """
    n = layers_per_block + 1
    fixed = {"time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
             "label_emb.0.0.": "add_embedding.linear_1.", "label_emb.0.2.": "add_embedding.linear_2.",
             "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.", "out.2.": "conv_out."}
    for old, new in fixed.items():
        if key.startswith(old):
            return new + key[len(old):]
    m = re.match(r"input_blocks\.(\d+)\.(\d+)\.(.+)$", key)
    if m:
        i, j, rest = int(m.group(1)) - 1, int(m.group(2)), m.group(3)
        b, l = divmod(i, n)
        if l == layers_per_block:  # downsampler
            if j == 0 and rest.startswith("op."):
                return f"down_blocks.{b}.downsamplers.0.conv.{rest[3:]}"
            raise KeyError(key)
        if j == 0:
            return f"down_blocks.{b}.resnets.{l}.{_unet_resblock(rest)}"
        if j == 1 and attention_levels[b]:
            return f"down_blocks.{b}.attentions.{l}.{_unet_transformer(rest)}"
        raise KeyError(key)
    m = re.match(r"middle_block\.(\d)\.(.+)$", key)
    if m:
        j, rest = int(m.group(1)), m.group(2)
        if j in (0, 2):
            return f"mid_block.resnets.{j // 2}.{_unet_resblock(rest)}"
        return f"mid_block.attentions.0.{_unet_transformer(rest)}"
    m = re.match(r"output_blocks\.(\d+)\.(\d+)\.(.+)$", key)
    if m:
        i, j, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        b, l = divmod(i, n)  # up block b mirrors down level (levels - 1 - b)
        has_attn = attention_levels[len(attention_levels) - 1 - b]
        if j == 0:
            return f"up_blocks.{b}.resnets.{l}.{_unet_resblock(rest)}"
        if rest.startswith("conv.") and (j == 2 or (j == 1 and not has_attn)):
            return f"up_blocks.{b}.upsamplers.0.{rest}"
        if j == 1 and has_attn:
            return f"up_blocks.{b}.attentions.{l}.{_unet_transformer(rest)}"
        raise KeyError(key)
    raise KeyError(key)


def unet_layout(config: dict) -> tuple[int, list[bool]]:
    """(layers_per_block, attention per level) of an IDTSUNet config."""
    return config["layers_per_block"], ["CrossAttn" in t for t in config["down_block_types"]]


def convert_unet(state: dict, config: dict) -> dict:
    """Reference UNet state_dict (prefix stripped) -> IDTSUNet state_dict."""
    lpb, attn = unet_layout(config)
    return {unet_key(k, lpb, attn): v for k, v in state.items()}


# ---------------------------------------------------------------------------------------------- VAE

_VAE_RES = {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2", "nin_shortcut": "conv_shortcut"}
_VAE_ATTN = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def vae_key(key: str, num_levels: int) -> str:
    """Map one sgm/LDM `AutoencoderKL` key to diffusers' `AutoencoderKL`."""
    if re.match(r"(quant_conv|post_quant_conv)\.", key):
        return key
    m = re.match(r"(encoder|decoder)\.(.+)$", key)
    if not m:
        raise KeyError(key)
    part, rest = m.groups()
    if re.match(r"conv_in\.|conv_out\.", rest):
        return f"{part}.{rest}"
    if rest.startswith("norm_out."):
        return f"{part}.conv_norm_out.{rest[9:]}"
    m = re.match(r"mid\.block_(1|2)\.(\w+)\.(weight|bias)$", rest)
    if m:
        return f"{part}.mid_block.resnets.{int(m.group(1)) - 1}.{_VAE_RES[m.group(2)]}.{m.group(3)}"
    m = re.match(r"mid\.attn_1\.(\w+)\.(weight|bias)$", rest)
    if m:
        return f"{part}.mid_block.attentions.0.{_VAE_ATTN[m.group(1)]}.{m.group(2)}"
    m = re.match(r"(down|up)\.(\d+)\.block\.(\d+)\.(\w+)\.(weight|bias)$", rest)
    if m:
        d, i, j, name, wb = m.groups()
        i = int(i) if d == "down" else num_levels - 1 - int(i)
        return f"{part}.{d}_blocks.{i}.resnets.{j}.{_VAE_RES[name]}.{wb}"
    m = re.match(r"down\.(\d+)\.downsample\.conv\.(weight|bias)$", rest)
    if m:
        return f"{part}.down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}"
    m = re.match(r"up\.(\d+)\.upsample\.conv\.(weight|bias)$", rest)
    if m:
        return f"{part}.up_blocks.{num_levels - 1 - int(m.group(1))}.upsamplers.0.conv.{m.group(2)}"
    raise KeyError(key)


def convert_vae(state: dict, num_levels: int) -> dict:
    """Reference VAE state_dict (prefix stripped) -> diffusers AutoencoderKL state_dict.
    The mid-block attention's 1x1 convs become linear weights."""
    out = {}
    for k, v in state.items():
        nk = vae_key(k, num_levels)
        if ".attentions.0.to_" in nk and nk.endswith("weight") and v.ndim == 4:
            v = v[:, :, 0, 0]
        out[nk] = v
    return out


# ---------------------------------------------------------------------------------------------- CLIP towers

# Text-side tensors that ship with the checkpoint's CLIP models but play no part in the image towers.
CLIP_TEXT_KEYS = ("positional_embedding", "text_projection", "logit_scale", "token_embedding.weight",
                  "ln_final.weight", "ln_final.bias")

_CLIP_LAYER = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "attn.out_proj": "self_attn.out_proj",
               "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def convert_clip_visual(state: dict) -> tuple[dict, list[str]]:
    """open_clip / OpenAI CLIP model state_dict (prefix stripped) -> transformers CLIPVisionModelWithProjection.

    Returns (converted, ignored_text_keys). The fused qkv projection is split into q, k, v; `proj` [D, E] is
    transposed into `visual_projection.weight` [E, D]. Raises KeyError for anything unknown.
    """
    out, ignored = {}, []
    vm = "vision_model."
    for k, v in state.items():
        if k in CLIP_TEXT_KEYS:
            ignored.append(k)
            continue
        if not k.startswith("visual."):
            raise KeyError(k)
        r = k[len("visual."):]
        simple = {"class_embedding": vm + "embeddings.class_embedding",
                  "positional_embedding": vm + "embeddings.position_embedding.weight",
                  "conv1.weight": vm + "embeddings.patch_embedding.weight"}
        if r in simple:
            out[simple[r]] = v
            continue
        if r == "proj":
            out["visual_projection.weight"] = v.t()
            continue
        m = re.match(r"(ln_pre|ln_post)\.(weight|bias)$", r)
        if m:
            out[vm + ("pre_layrnorm." if m.group(1) == "ln_pre" else "post_layernorm.") + m.group(2)] = v
            continue
        m = re.match(r"transformer\.resblocks\.(\d+)\.(.+)$", r)
        if not m:
            raise KeyError(k)
        layer, rest = vm + f"encoder.layers.{m.group(1)}.", m.group(2)
        m2 = re.match(r"attn\.in_proj_(weight|bias)$", rest)
        if m2:
            for name, part in zip("qkv", v.chunk(3, dim=0)):
                out[layer + f"self_attn.{name}_proj.{m2.group(1)}"] = part
            continue
        m2 = re.match(r"(.+)\.(weight|bias)$", rest)
        if not m2 or m2.group(1) not in _CLIP_LAYER:
            raise KeyError(k)
        out[layer + f"{_CLIP_LAYER[m2.group(1)]}.{m2.group(2)}"] = v
    return out, ignored


# ---------------------------------------------------------------------------------------------- identity, aesthetic

def identity_key(key: str) -> str:
    """`conditioner.embedders.5.*` (prefix stripped): `id_model.*` -> `backbone.*`, `mlp.{0,2,4}.*` unchanged."""
    if key.startswith("id_model."):
        return "backbone." + key[len("id_model."):]
    if re.match(r"mlp\.(0|2|4)\.(weight|bias)$", key):
        return key
    raise KeyError(key)


def convert_identity(state: dict) -> dict:
    return {identity_key(k): v for k, v in state.items()}


def aesthetic_mlp_key(key: str) -> str:
    """`aesthetic_mlp.layers.{0,2,4,6,7}.*` (or the stand-alone file's `layers.*`) -> `layers.*`."""
    key = key[len("aesthetic_mlp."):] if key.startswith("aesthetic_mlp.") else key
    if re.match(r"layers\.(0|2|4|6|7)\.(weight|bias)$", key):
        return key
    raise KeyError(key)
