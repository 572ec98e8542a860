"""Batch: many portraits, one ordinary job folder each, run by a local process pool or Ray.

`inputs` finds the photos (a folder or a CSV manifest), `state` keeps OUT/batch.json, `worker` runs one job in
a worker that keeps its models warm, `engines` schedules workers (local processes or Ray actors), `runner`
drives a batch (skip, resume, retry, cancel), `render` and `report` make OUT/report.html and OUT/report.csv,
`cli` is `headforge batch`.
"""
