"""Parity of the conditioning models with `arcface_irse50`, `aesthetic_mlp` and `conditioner`."""
import numpy as np
import torch

from headforge.backend.idts.aesthetic import AestheticMLP, aesthetic_clip_input, normalize_features
from headforge.backend.idts.clip import clip_token_input
from headforge.backend.idts.embeddings import aesthetic_embedding, scalar_embedding
from headforge.backend.idts.frames import prepare_frame, to_signed
from headforge.backend.idts.identity import IRSE50, IdentityEncoder, l2_normalize

from .conftest import max_abs


def test_arcface_irse50(fixtures):
    fx = fixtures("arcface_irse50")
    t = fx.t
    model = IRSE50().eval()
    weights = fx.weights(prefix="conditioner.embedders.5.id_model.")
    assert set(weights) == set(model.state_dict())
    model.load_state_dict(weights, strict=True)
    assert sum(p.numel() for p in model.parameters()) == fx.meta["n_params"]
    with torch.no_grad():
        prep = IdentityEncoder.preprocess(t["frame_256"])
        both = model(torch.cat([t["images_112"], prep]), normalize=False)  # one pass: this is the slow model
        pre, unit, frame_emb = both[:2], l2_normalize(both[:2]), l2_normalize(both[2:])
    errs = {"pre_l2": max_abs(pre, t["pre_l2_embeddings"]), "unit": max_abs(unit, t["embeddings"]),
            "preprocess": max_abs(prep, t["frame_256_preprocessed_112"]),
            "frame_256": max_abs(frame_emb, t["frame_256_embedding"])}
    print("arcface_irse50 max|diff|", errs)
    # pre-L2 values reach |16.5| through 50 BN/conv blocks: 1e-4 abs is ~6e-6 relative
    assert errs["pre_l2"] < 1e-4
    assert errs["unit"] < 1e-5 and errs["frame_256"] < 1e-5 and errs["preprocess"] < 1e-6


def test_aesthetic_mlp(fixtures):
    fx = fixtures("aesthetic_mlp")
    t = fx.t
    mlp = AestheticMLP().eval()
    mlp.load_state_dict(fx.weights(prefix="conditioner.embedders.1.aesthetic_mlp."), strict=True)
    assert sum(p.numel() for p in mlp.parameters()) == fx.meta["n_params"]
    with torch.no_grad():
        norm = normalize_features(t["clip_image_features"])
        score = mlp(norm)
    errs = {"normalized": max_abs(norm, t["normalized_features"]), "score": max_abs(score, t["score"]),
            "vector": max_abs(aesthetic_embedding(score), t["aes_vector_256"]),
            "fixed_vector": max_abs(aesthetic_embedding(t["fixed_scores"]), t["fixed_scores_vector_256"])}
    print("aesthetic_mlp max|diff|", errs)
    assert errs["normalized"] < 1e-6 and errs["score"] < 1e-6
    assert errs["vector"] < 1e-5 and errs["fixed_vector"] < 1e-5  # sin/cos of 100*score (|arg| ~ 700)


def test_conditioner(fixtures, tiny_conditioner):
    t = fixtures("conditioner").t
    bgr = t["input_bgr_u8"].numpy()
    for size in (256, 512):
        prepared = prepare_frame(bgr, size)[..., ::-1]  # the fixture stores them RGB
        assert np.array_equal(prepared, t[f"prepared_{size}_u8"].numpy())
    image = to_signed(np.ascontiguousarray(prepare_frame(bgr, 256)[..., ::-1]))
    assert max_abs(image, t["image"]) == 0.0
    assert max_abs(image[None] + t["cond_aug"] * t["cond_frames_noise"], t["cond_frames"]) == 0.0
    # resampling: exact with torch's default threads; a last-bit difference with one thread
    assert max_abs(clip_token_input(t["image"][None]), t["clip_preprocessed_224"]) < 1e-6
    assert max_abs(aesthetic_clip_input(t["image"][None]), t["aes_clip_input_224"]) < 1e-6
    assert max_abs(scalar_embedding(t["elevations"], 256), t["elevation_emb_256"]) == 0.0
    assert max_abs(scalar_embedding(t["cond_augs"], 256), t["cond_aug_emb_256"]) == 0.0
    m = tiny_conditioner
    with torch.no_grad():
        feats = m.aesthetic_encoder(pixel_values=t["aes_clip_input_224"]).image_embeds
        tokens = m.identity_encoder.project(t["arcface_unit_embeddings"])
        cond, uncond = m(t["image"][None], t["cond_frames"], t["elevation"], t["cond_aug"], num_frames=4)
    errs = {
        "aes_clip_features": max_abs(feats, t["aes_clip_features"]),
        "arcface_mlp_tokens": max_abs(tokens, t["arcface_mlp_tokens"]),
        "emb_clip_token": max_abs(cond.crossattn[:, :1], t["emb_clip_token"]),
        "emb_arcface_token": max_abs(cond.crossattn[:, 1:], t["emb_arcface_token"]),
        "emb_aes_vector": max_abs(cond.vector[:, :256], t["emb_aes_vector"]),
        "c_crossattn": max_abs(cond.crossattn, t["c_crossattn"]),
        "uc_crossattn": max_abs(uncond.crossattn, t["uc_crossattn"]),
        "c_vector": max_abs(cond.vector, t["c_vector"]), "uc_vector": max_abs(uncond.vector, t["uc_vector"]),
        "c_concat": max_abs(cond.concat, t["c_concat"]), "uc_concat": max_abs(uncond.concat, t["uc_concat"]),
    }
    print("conditioner max|diff|", errs)
    assert errs["uc_crossattn"] == 0.0 and errs["uc_concat"] == 0.0
    assert max(v for k, v in errs.items() if k != "c_concat") < 1e-5
    assert errs["c_concat"] < 5e-5  # VAE encoder output of magnitude ~5.3 (2e-6 relative)
