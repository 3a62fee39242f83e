"""The Gradio app's parts; app.py holds only the page's layout and wiring.

- ``panels``: the views of a segmentation (result, probability, layers, probe, vote), one registry entry each,
  and ``SEGMENT_API``, the `/segment` outputs by name.
- ``callbacks``: what the page's events do, values keyed by component; ``forms`` decodes what the page sends.
- ``steps``: the model steps (ZeroGPU-ready) and the per-process stores; ``banner``: weights loading and waiting.
- ``view``: what a session keeps; ``probe_view``: the probe's HTML; ``pictures``: files published whole.
- ``weights_menu``, ``examples``, ``messages`` (errors as visitors see them), ``style`` (CSS, theme, script).
"""
