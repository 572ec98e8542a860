"""The expression rig: building (joints, skin weights, ARKit keys), texturing, glTF writing, software renders."""
