"""The bottom layer: what every model shares and nothing else.

* :mod:`coursekit.core.checks`  — input checks with clear errors (``check_input``,
  ``positive_int``, ``one_of``, ``event_shape_of``);
* :mod:`coursekit.core.history` — ``History`` and ``NonFiniteError`` (no framework imported);
* :mod:`coursekit.core.fields`  — the vector-field kernel of lessons 05–09: the field
  protocol ``f(t, x)``, ``batch_time``, ``NFECounter``, ``time_embedding``, ``hutchinson_probe``.

Modules here import no other part of coursekit (import-linter checks it).
"""
