import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(1)  # the test machines are shared: one thread is several times faster than two there


@pytest.fixture(scope="session")
def lps(shared):
    from helpers import reference

    return reference(shared)


@pytest.fixture(scope="session")
def lps_views(lps):
    """32 views (rings at 0° and 30°, 96 px) of the reference head: (cameras, colour views, depth views)."""
    from helpers import render_views

    return render_views(lps, 96, rings=(1, 4))
