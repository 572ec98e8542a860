"""Scene settings (saved with the .blend) and the live job state (window manager, never saved)."""
import bpy
from bpy.props import (BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, PointerProperty,
                       StringProperty)


class HEADFORGE_PG_photo(bpy.types.PropertyGroup):
    """One more photo of the same person (¾, profile): Instant mode fits one head to all of them."""
    path: StringProperty(name="Photo", subtype="FILE_PATH", description="Another photo of the same person")


class HEADFORGE_PG_settings(bpy.types.PropertyGroup):
    photo: StringProperty(name="Photo", subtype="FILE_PATH", description="Portrait photo (JPEG, PNG, WebP, TIFF)")
    more_photos: CollectionProperty(type=HEADFORGE_PG_photo, name="More Photos",
                                    description="More photos of the same person (¾, profile): one head is fitted to "
                                    "all of them and textured from all; photos of someone else are refused")
    more_photos_index: IntProperty(name="Active Photo", default=0, min=0)
    mode: EnumProperty(name="Mode", default="auto", items=[
        ("auto", "Auto", "Full where this machine can run it (CUDA GPU and the multi-view weights), else Instant"),
        ("full", "Full", "Multi-view diffusion, Gaussian splat, mesh and rig (needs a CUDA GPU)"),
        ("instant", "Instant", "Fit the head model to the photo on the CPU in seconds"),
        ("views", "Views", "Reconstruct from a folder of views you already have (headforge render-views or your "
         "own renders with cameras.json): splat, mesh and rig")])
    views_folder: StringProperty(name="Views", subtype="DIR_PATH",
                                 description="A views folder: cameras.json and one RGBA image per camera")
    until: StringProperty(name="Stop after", default="", description="Stop after this stage (empty: run all)")
    face_index: IntProperty(name="Face", default=-1, min=-1,
                            description="Which detected face to use, numbered left to right (-1: the largest)")
    auto_import: BoolProperty(name="Import Results", default=True,
                              description="Import the splat and the head when the job finishes")
    max_preview_splats: IntProperty(name="Max Preview Splats", default=200_000, min=0,
                                    description="The viewport draws at most about this many splats")
    splat_colour: EnumProperty(name="Splat Colour", default="SH0", items=[
        ("SH0", "Base colour", "Degree-0 colour (fast)"),
        ("SH", "View-dependent", "Spherical harmonics up to the file's degree")])


class HEADFORGE_PG_state(bpy.types.PropertyGroup):
    running: BoolProperty(default=False)
    stage: StringProperty(default="")
    progress: FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR")
    message: StringProperty(default="")
    preview: StringProperty(default="", subtype="FILE_PATH")
    job_dir: StringProperty(default="", subtype="DIR_PATH")
    error: StringProperty(default="")  # one short sentence
    error_code: StringProperty(default="")  # the typed error's code: which fix the panel offers
    error_hint: StringProperty(default="")  # what fixes it
    mode_note: StringProperty(default="")  # Auto: which mode ran and why
    faces: IntProperty(default=0)  # faces the face stage found in the photo (the chooser shows when > 1)
    imported: StringProperty(default="")  # the collection the last results went into


CLASSES = (HEADFORGE_PG_photo, HEADFORGE_PG_settings, HEADFORGE_PG_state)


def attach():
    bpy.types.Scene.headforge = PointerProperty(type=HEADFORGE_PG_settings)
    bpy.types.WindowManager.headforge = PointerProperty(type=HEADFORGE_PG_state)


def detach():
    del bpy.types.WindowManager.headforge
    del bpy.types.Scene.headforge
