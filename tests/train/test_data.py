"""Training clips from a dataset folder: stage-1 generations when the dataset has them, coded errors when it is
wrong."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from headforge.backend.errors import HeadForgeError
from headforge.backend.train.data import ClipSource


def test_stage1_generations_are_used_when_present(tmp_path, tiny_dataset):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    s1 = data / "red" / "stage1"
    s1.mkdir()
    for k in range(16):  # ring 1 only, at stage-1 size (16 px for a 32-px stage 2), one grey level per view
        Image.fromarray(np.full((16, 16, 3), 10 * k, np.uint8)).save(s1 / f"{16 + k:03d}.png")
    src = ClipSource(data, "train", 32, 4, [0, 12], rings=[0, 1], stage1_resolution=16)
    seen = set()
    for seed in range(12):
        clip = src.draw(torch.Generator().manual_seed(seed))
        seen.add((clip.sequence, clip.ring))
        ks = [(clip.start + t) % 16 for t in range(4)]
        if clip.sequence == "red" and clip.ring == 1:  # the generations, upscaled
            assert [int(clip.stage1[t].mean()) for t in range(4)] == [10 * k for k in ks]
        else:  # no generations: the frames degraded to 16 px and back
            assert clip.stage1.shape == clip.frames.shape
            assert 0 < np.abs(clip.stage1.astype(int) - clip.frames.astype(int)).mean() < 30
    assert ("red", 1) in seen and len(seen) >= 3


def test_dataset_problems_have_codes(tmp_path, tiny_dataset):
    def code(**kw):
        with pytest.raises(HeadForgeError) as e:
            src = ClipSource(**{"dataset": tiny_dataset, "split": "train", "resolution": 32, "num_frames": 4,
                                "start_frames": [0], **kw})
            src.draw(torch.Generator().manual_seed(0))
        return e.value.code

    assert code(split="val") == "train.dataset.empty_split"
    assert code(resolution=128) == "train.dataset.too_small"  # the views are 64 px
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.json").write_text(json.dumps({"format": "something-else", "sequences": []}))
    assert code(dataset=bad) == "train.dataset.manifest"


def test_a_clip_reads_only_its_own_views(tiny_dataset):
    from headforge.backend.train.data import over_white
    from headforge.backend.views import read_views

    vdir = tiny_dataset / "red" / "views"
    cams, every = read_views(vdir, code="train")  # unchanged without `indices`: all 96
    assert len(every) == 96
    _, some = read_views(vdir, code="train", indices=[17, 3, 16])
    assert [cams[v.camera_index]["index"] for v in some] == [3, 16, 17]  # cameras.json's order
    assert all(np.array_equal(v.rgba, every[v.camera_index].rgba) for v in some)
    with pytest.raises(HeadForgeError) as e:
        read_views(vdir, code="train", indices=[5, 96])
    assert e.value.code == "train.missing_view" and "96" in e.value.message

    src = ClipSource(tiny_dataset, "train", 64, 4, [0, 12], rings=[1])
    clip = src.draw(torch.Generator().manual_seed(0))
    assert src.views_read == 4 and len(clip.views) == 4  # 4 frames: 4 images decoded, not 96
    by_index = {cams[v.camera_index]["index"]: v for v in every}
    assert all(np.array_equal(f, over_white(by_index[i].rgba)) for f, i in zip(clip.frames, clip.views))
    again = ClipSource(tiny_dataset, "train", 64, 4, [0, 12], rings=[1])
    for seed in range(6):  # a warm cache gives the same clips as a cold one
        a = src.draw(torch.Generator().manual_seed(seed))
        b = again.draw(torch.Generator().manual_seed(seed))
        assert (a.sequence, a.ring, a.start, a.views) == (b.sequence, b.ring, b.start, b.views)
        assert np.array_equal(a.frames, b.frames)
    assert src.views_read <= 2 * 16  # two train sequences, ring 1 only: each view decoded once at most
