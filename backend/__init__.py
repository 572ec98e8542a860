"""HeadForge backend: pure Python (never imports bpy). Stages, models, the job runner and the CLI."""
__version__ = "0.1.0"
