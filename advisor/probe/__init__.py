"""The probe: run the regression a script trains, on its own data, against the exact answer.

Static findings say what looks wrong; the probe shows what happens. It needs numpy (and torch
only for `--run`), so nothing here is imported by the static path.
"""
