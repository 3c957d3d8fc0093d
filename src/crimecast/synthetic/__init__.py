"""The synthetic Los Angeles incident generator and its calibration against real LAPD data.

:mod:`~crimecast.synthetic.generate` writes LAPD-schema incidents,
:mod:`~crimecast.synthetic.tables` loads the calibration tables it ships and
:mod:`~crimecast.synthetic.calibration` compares a frame with the real aggregates. Its
tunables are :class:`crimecast.config.GeneratorConfig`. It sits beside
:mod:`crimecast.data`, which it may use and which never imports it.
"""
