"""Software rendering of triangle meshes on the CPU (numpy), shared by the rig, fitting, animation and batch code:
`raster` (z-buffered triangle rasterizer, projection, attribute interpolation, vertex normals), `shade` (a head
model's Lambert preview), `image` (bilinear sampling and pull–push hole filling). The torch rasterizer the mesh
stage uses for large depth renders is backend/mesh/raster.py (tests/mesh compares the two)."""
