"""`leanvla probe`: a policy against a dataset's demonstrations, offline: how far its action chunks
fall from what the demonstrator did next, and whether it reads its images and its state.

measure.py  which frames are probed, their counterparts in other demonstrations, the errors
summary.py  the errors reduced per task, chunk step and action dimension
report.py   report.md and probe.png
run.py      the command: options, checks, the run, its outputs
"""
