"""Face performance: takes (ARKit weights, head and eye rotations) from Live Link Face CSVs, glTF morph-weight
animations and videos."""
