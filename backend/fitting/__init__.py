"""Fitting head models to 3D targets (landmarks, surfaces) and to single photos (2D landmarks)."""
