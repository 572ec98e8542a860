"""The 96-view head dataset: layout and check (layout.py), built-in ICT heads (ict_heads.py), the builder (build.py)."""
